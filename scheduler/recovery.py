"""Runs whose worker died: mark them lost, then re-queue them (they resume from their last
checkpoint) while attempts remain, else fail them with the reason. A multi-node run is lost when
any of its nodes' workers dies; the whole gang is re-queued and placed again together."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from webapp.cluster.models import Worker
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Artifact, NodeState, Run, RunNode, RunState

log = logging.getLogger("kiln.scheduler")
HOLDING = (RunState.SCHEDULED, RunState.RUNNING)


def mark_lost(worker_timeout_seconds: float) -> int:
    """scheduled/running runs of workers that stopped or went silent become lost; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=worker_timeout_seconds)
    dead = Worker.objects.filter(Q(stopped_at__isnull=False) | Q(heartbeat_at__lt=cutoff))
    # NOTE: an external run (MLflow client, `kiln import`) has no worker by design; its client sets its state.
    orphans = (Run.objects.filter(state__in=HOLDING).exclude(kind="external")
               .filter(Q(worker__in=dead) | Q(worker__isnull=True)))
    count = 0
    for run_id, attempt, worker_name in orphans.values_list("id", "attempt", "worker__name"):
        why = f"worker {worker_name} stopped heartbeating" if worker_name else "its worker was removed"
        if run_transition(run_id=run_id, from_states=HOLDING, to_state=RunState.LOST,
                          expected_attempt=attempt, reason=why):
            log.warning("run %s attempt %s lost: %s", run_id, attempt, why)
            count += 1
    count += _mark_gangs_lost(dead)
    _close_nodes_of(dead)
    return count


def _mark_gangs_lost(dead) -> int:
    """A multi-node run whose any node's worker died is lost whole: the other nodes see it and stop their ranks."""
    nodes = RunNode.objects.filter(run__state__in=HOLDING, attempt=F("run__attempt")).filter(
        Q(worker__in=dead) | Q(worker__isnull=True)).exclude(state__in=(NodeState.SUCCEEDED,))
    count = 0
    for run_id, attempt, node_rank, worker_name in nodes.values_list("run_id", "attempt", "node_rank", "worker_name"):
        why = f"worker {worker_name} (node {node_rank}) stopped heartbeating: every node of the run stops"
        if run_transition(run_id=run_id, from_states=HOLDING, to_state=RunState.LOST,
                          expected_attempt=attempt, reason=why):
            log.warning("run %s attempt %s lost: %s", run_id, attempt, why)
            count += 1
    return count


def _close_nodes_of(dead) -> None:
    """A node whose worker died runs nothing any more, whatever became of its run: it is stopped."""
    RunNode.objects.filter(state__in=(NodeState.SCHEDULED, NodeState.RUNNING), worker__in=dead).update(
        state=NodeState.STOPPED, reason="its worker stopped heartbeating", finished_at=timezone.now())


def requeue_lost() -> int:
    """lost -> queued while attempts remain (else failed); returns how many were re-queued."""
    requeued = 0
    for run_id, attempt, max_attempts in Run.objects.filter(state=RunState.LOST).values_list(
        "id", "attempt", "max_attempts"
    ):
        if attempt >= max_attempts:
            reason = f"its worker was lost on {attempt} of {max_attempts} attempts; giving up"
            run_transition(run_id=run_id, from_states=(RunState.LOST,), to_state=RunState.FAILED,
                           expected_attempt=attempt, reason=reason, failure_reason=reason)
            continue
        step = Artifact.objects.filter(run_id=run_id, kind="checkpoint").order_by("-step").values_list(
            "step", flat=True).first()
        resume = f"; resumes from checkpoint step {step}" if step is not None else "; starts over (no checkpoint)"
        reason = f"re-queued after its worker was lost (attempt {attempt} of {max_attempts}){resume}"
        if run_transition(run_id=run_id, from_states=(RunState.LOST,), to_state=RunState.QUEUED,
                          expected_attempt=attempt, reason=reason, pending_reason=reason, worker=None,
                          gpu_indices=[]):
            requeued += 1
    return requeued

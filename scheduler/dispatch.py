"""Claim placed runs (compare-and-swap) and ring their worker's doorbell once the claim commits.

A message can be lost (a broker restart, a worker that died before taking it). Runs still
`scheduled` after `resend_after` seconds get their message again; that is safe because the
worker's claim is a compare-and-swap on (run, attempt), so at most one delivery runs. A send
that fails (the broker is down) leaves the claim standing and is tried again every tick.

A multi-node run is claimed whole: in one transaction every one of its workers is locked and
checked, the run moves queued -> scheduled on node 0's worker, and one `RunNode` per node records
its worker and GPUs for this attempt; then each worker gets its message with its `node_rank`.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta

from celery import Celery
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from scheduler.policy import Assignment
from webapp.cluster.models import Worker
from webapp.experiments.lifecycle import run_claim_attempt
from webapp.experiments.models import NodeState, Run, RunNode, RunState
from worker.celery_app import send_run

log = logging.getLogger("kiln.scheduler")


class Dispatcher:
    def __init__(self, app: Celery, *, resend_after: float):
        self.app = app
        self.resend_after = resend_after
        self._sent: dict[tuple[int, int], float] = {}  # (run, attempt) -> monotonic time last sent
        self._unsent: set[tuple[int, int]] = set()  # sends that failed: tried again at the next tick
        self._node_sent: dict[tuple[int, int, int], float] = {}  # (run, attempt, node) -> last sent, gangs

    def start(self, assignments: Sequence[Assignment], workers: dict[str, Worker]) -> int:
        """Claim each assignment (a gang's all at once) and send its messages after commit; returns runs claimed."""
        started = 0
        gangs: dict[int, list[Assignment]] = defaultdict(list)
        multi_node = {a.run_id for a in assignments if a.node_rank}
        for assignment in assignments:
            if assignment.run_id in multi_node:
                gangs[assignment.run_id].append(assignment)
                continue
            worker = workers[assignment.worker]
            with transaction.atomic():
                if not _lock_if_taking_runs(worker.id):
                    continue  # it started draining after the pass read it: the next tick places the run elsewhere
                if not run_claim_attempt(run_id=assignment.run_id, worker_id=worker.id,
                                         gpu_indices=list(assignment.gpu_indices),
                                         reason=f"placed on {worker.name}"):
                    continue  # cancelled or claimed meanwhile
                attempt = Run.objects.filter(id=assignment.run_id).values_list("attempt", flat=True).get()
                transaction.on_commit(functools.partial(self._send, assignment.run_id, attempt, worker.name))
            started += 1
        for run_id, nodes in gangs.items():
            started += self._start_gang(run_id, sorted(nodes, key=lambda a: a.node_rank), workers)
        return started

    def _start_gang(self, run_id: int, nodes: list[Assignment], workers: dict[str, Worker]) -> int:
        """All nodes of a multi-node run, or none (a worker that began draining puts the whole gang back)."""
        with transaction.atomic():
            for node in nodes:
                if not _lock_if_taking_runs(workers[node.worker].id):
                    return 0
            first = workers[nodes[0].worker]
            names = ", ".join(node.worker for node in nodes)
            if not run_claim_attempt(run_id=run_id, worker_id=first.id, gpu_indices=list(nodes[0].gpu_indices),
                                     reason=f"placed on {len(nodes)} nodes: {names}"):
                return 0
            attempt = Run.objects.filter(id=run_id).values_list("attempt", flat=True).get()
            rendezvous_id = secrets.token_hex(8)
            RunNode.objects.bulk_create([
                RunNode(run_id=run_id, attempt=attempt, node_rank=node.node_rank, worker=workers[node.worker],
                        worker_name=node.worker, gpu_indices=list(node.gpu_indices), rendezvous_id=rendezvous_id)
                for node in nodes
            ])
            for node in nodes:
                transaction.on_commit(functools.partial(self._send, run_id, attempt, node.worker, node.node_rank))
        return 1

    def resend_stuck(self, online: dict[str, Worker]) -> int:
        """Send again the messages of runs scheduled on a live worker for too long, or whose send failed."""
        cutoff = timezone.now() - timedelta(seconds=self.resend_after)
        stuck = list(
            Run.objects.filter(state=RunState.SCHEDULED, worker__name__in=list(online))
            .filter(Q(scheduled_at__lt=cutoff) | Q(id__in=[run_id for run_id, _ in self._unsent]))
            .values_list("id", "attempt", "worker__name")
        )
        self._unsent &= {(run_id, attempt) for run_id, attempt, _ in stuck}  # the others moved on
        resent = 0
        for run_id, attempt, worker_name in stuck:
            unsent = (run_id, attempt) in self._unsent
            if not unsent and time.monotonic() - self._sent.get((run_id, attempt), 0.0) < self.resend_after:
                continue
            if not unsent:
                log.warning("run %s attempt %s still scheduled on %s: sending its message again",
                            run_id, attempt, worker_name)
            if not self._send(run_id, attempt, worker_name):
                break  # the broker is still away: the rest wait for the next tick
            resent += 1
        return resent + self._resend_stuck_nodes(online, cutoff)

    def _resend_stuck_nodes(self, online: dict[str, Worker], cutoff) -> int:
        """The nodes of multi-node runs still waiting for their worker to start them."""
        stuck = RunNode.objects.filter(state=NodeState.SCHEDULED, worker_name__in=list(online),
                                       run__state__in=(RunState.SCHEDULED, RunState.RUNNING),
                                       run__attempt=models.F("attempt"), run__scheduled_at__lt=cutoff)
        resent = 0
        for run_id, attempt, worker_name, node_rank in stuck.values_list("run_id", "attempt", "worker_name", "node_rank"):
            key = (run_id, attempt, node_rank)
            if time.monotonic() - self._node_sent.get(key, 0.0) < self.resend_after:
                continue
            self._node_sent[key] = time.monotonic()
            log.warning("run %s attempt %s node %s still waiting on %s: sending its message again",
                        run_id, attempt, node_rank, worker_name)
            if not self._send(run_id, attempt, worker_name, node_rank):
                break
            resent += 1
        return resent

    def _send(self, run_id: int, attempt: int, worker_name: str, node_rank: int = 0) -> bool:
        self._sent[(run_id, attempt)] = time.monotonic()
        if len(self._sent) > 10_000:
            self._sent = dict(list(self._sent.items())[-5_000:])
        try:
            send_run(self.app, run_id=run_id, attempt=attempt, worker_name=worker_name, node_rank=node_rank)
        except Exception as exc:  # the claim stands; only the doorbell waits for the broker
            if (run_id, attempt) not in self._unsent:
                log.warning("run %s attempt %s: the broker refused its message (%s); trying again each tick",
                            run_id, attempt, exc)
            self._unsent.add((run_id, attempt))
            return False
        if self._unsent:
            self._unsent.discard((run_id, attempt))
        return True


def _lock_if_taking_runs(worker_id: int) -> bool:
    """Lock the worker's row until the claim commits, if it is not draining.

    `worker_drain` then waits for the claim, and the stopping worker hands the run back with the rest.
    """
    return bool(Worker.objects.select_for_update().filter(id=worker_id, draining=False).values_list("id"))

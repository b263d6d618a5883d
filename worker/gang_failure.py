"""Was a node's failure its own, or the echo of losing another node of its gang?

When one worker of a multi-node run dies, its ranks vanish and the surviving ranks' collectives see
their connections drop: MPI may abort them, or crash them, within milliseconds, long before the
scheduler notices the silent worker (`KILN_WORKER_TIMEOUT`). Recorded at once, that failure would
fail the run instead of re-queueing the gang. So a failed node first waits for every other node
still running to prove it is alive with a heartbeat newer than the failure (about one heartbeat
interval for a real failure); a peer whose worker stopped, or stays silent for the worker timeout,
is a lost peer, and the run is handed back as lost. Clocks of the workers' hosts are assumed close
(heartbeats are stamped by each worker's clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.utils import timezone

from webapp.experiments.models import NodeState, Run, RunNode, RunState

POLL_SECONDS = 0.5


def lost_peer_behind(run_id: int, attempt: int, node_rank: int, failed_at: datetime, *,
                     worker_timeout_seconds: float, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """The lost peer ("worker W (node N)") that explains this node's failure, or None if the failure is its own.

    None too when the run stopped running meanwhile: whoever moved it decided its fate."""
    deadline = failed_at + timedelta(seconds=worker_timeout_seconds)
    while True:
        if not Run.objects.filter(id=run_id, attempt=attempt, state=RunState.RUNNING).exists():
            return None
        peers = list(RunNode.objects.filter(run_id=run_id, attempt=attempt,
                                            state__in=(NodeState.SCHEDULED, NodeState.RUNNING))
                     .exclude(node_rank=node_rank)
                     .values_list("node_rank", "worker_name", "worker__heartbeat_at", "worker__stopped_at"))
        silent = []
        for rank, name, heartbeat_at, stopped_at in peers:
            if stopped_at is not None or heartbeat_at is None:
                return f"worker {name} (node {rank})"
            if heartbeat_at <= failed_at:
                silent.append(f"worker {name} (node {rank})")
        if not silent:
            return None
        if timezone.now() >= deadline:
            return silent[0]
        sleep(POLL_SECONDS)

"""The run page's view of a distributed run: its nodes (workers), their ranks, states and utilisation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from webapp.experiments.models import MetricSummary, Run, RunNode

_FAILED_RANK = re.compile(r"\brank (\d+)\b")  # engine.distributed.run names the first rank that failed


@dataclass(frozen=True)
class RankView:
    rank: int
    local_rank: int
    gpu: str  # the GPU index it uses by convention (LOCAL_RANK-th of the node's), or ""
    state: str
    cpu_percent: float | None
    memory_mb: float | None
    gpu_util_percent: float | None


@dataclass(frozen=True)
class NodeView:
    node_rank: int
    worker: str
    ranks: str  # "0", or first and last joined by an en dash
    gpus: str  # "0, 1" or ""
    state: str
    reason: str
    cpu_percent: float | None
    memory_mb: float | None
    gpu_util_percent: float | None
    rank_views: list[RankView] = field(default_factory=list)


def gang_view(run: Run) -> list[NodeView]:
    """The nodes of the run's current attempt ([] unless it is distributed), in two queries.

    A multi-node run has one `RunNode` per node; a one-worker run with several processes is one node
    on the run's own worker. Utilisation is the last system sample: `sys/` for node 0, `sys/node<k>/` else.
    """
    if not run.is_distributed:
        return []
    per_node = run.processes_per_node
    if run.nodes > 1:
        rows = list(RunNode.objects.filter(run=run, attempt=run.attempt).values_list(
            "node_rank", "worker_name", "gpu_indices", "state", "reason"))
    elif run.attempt:
        rows = [(0, run.worker.name if run.worker else "\u2013", run.gpu_indices, run.state, "")]
    else:
        rows = []
    last = dict(MetricSummary.objects.filter(run=run, key__startswith="sys/").values_list("key", "last"))
    nodes = []
    for node_rank, worker, gpu_indices, state, reason in rows:
        prefix = f"sys/node{node_rank}/" if node_rank else "sys/"
        first = node_rank * per_node
        gpu_util = [u for i in gpu_indices if (u := last.get(f"{prefix}gpu{i}/util_percent")) is not None]
        nodes.append(NodeView(
            node_rank=node_rank, worker=worker,
            ranks=str(first) if per_node == 1 else f"{first}\u2013{first + per_node - 1}",
            gpus=", ".join(str(i) for i in gpu_indices), state=state, reason=reason,
            cpu_percent=last.get(f"{prefix}cpu_percent"), memory_mb=last.get(f"{prefix}memory_mb"),
            gpu_util_percent=sum(gpu_util) / len(gpu_util) if gpu_util else None,
            rank_views=_ranks_of(first, per_node, gpu_indices, state, reason, prefix, last),
        ))
    return nodes


def _ranks_of(first: int, per_node: int, gpu_indices: list[int], state: str, reason: str, prefix: str,
              last: dict[str, float | None]) -> list[RankView]:
    """A node's ranks: their state is the node's, except that a failed node's named rank failed and the
    others were stopped; utilisation is the rank's own (`sys/.../rank<r>/`) and its GPU's."""
    named = _FAILED_RANK.search(reason) if state == "failed" else None
    failed = int(named.group(1)) if named else None
    views = []
    for local in range(per_node):
        rank = first + local
        gpu = gpu_indices[local % len(gpu_indices)] if gpu_indices else None
        rank_state = state if failed is None else "failed" if rank == failed else "stopped"
        views.append(RankView(
            rank=rank, local_rank=local, gpu="" if gpu is None else str(gpu), state=rank_state,
            cpu_percent=last.get(f"{prefix}rank{rank}/cpu_percent"),
            memory_mb=last.get(f"{prefix}rank{rank}/memory_mb"),
            gpu_util_percent=None if gpu is None else last.get(f"{prefix}gpu{gpu}/util_percent")))
    return views

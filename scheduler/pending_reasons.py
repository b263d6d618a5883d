"""The sentences a user reads next to a run that is still queued."""

from __future__ import annotations

import math

from scheduler.policy_types import Reservation

BEHIND_OTHERS = "behind higher-priority or fairer-share runs"
NO_ISOLATED_WORKER = (
    "no isolated worker: code runs need a worker whose sandbox check holds (kiln workers shows why); "
    "an admin may set KILN_ALLOW_UNISOLATED_CODE=1 on a single-user machine"
)
WAITING_FOR_ISOLATED = "waiting for room on an isolated worker; the workers with room now may not run code"


def count(n: int, noun: str) -> str:
    """`count(1, "GPU")` -> "1 GPU"; `count(4, "GPU")` -> "4 GPUs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def gigabytes(memory_mb: float) -> str:
    """`gigabytes(32256)` -> "31.5 GB" (one decimal at most)."""
    return f"{memory_mb / 1024:.1f}".removesuffix(".0") + " GB"


def no_isolated_worker_big_enough(reason: str) -> str:
    """Isolated workers exist but none could ever hold the run (`reason` says why)."""
    return f"no isolated worker big enough: {reason}"


def waiting_for_memory(memory_mb: int, most_free_mb: float) -> str:
    return f"waiting for {gigabytes(memory_mb)} of memory on one worker; most free is {gigabytes(most_free_mb)}"


YOUR_QUOTA = "your quota"


def team_quota(team: str) -> str:
    return f"team {team}'s quota"


def over_quota(owner: str, asked: int, limit: int, noun: str) -> str:
    """A run asking for more than its user's or team's limit allows at all: it never starts until an admin raises it."""
    return f"asks for {count(asked, noun)} but {owner} allows {limit}"


def over_memory_quota(owner: str, asked_mb: int, limit_mb: int) -> str:
    return f"asks for {gigabytes(asked_mb)} of memory but {owner} allows {gigabytes(limit_mb)}"


def no_runs_allowed(owner: str) -> str:
    return f"{owner} allows no runs at once"


def no_gpu_hours_allowed(owner: str) -> str:
    return f"{owner} allows no GPU-hours per week"


def quota_full(owner: str, in_use: int, limit: int, noun: str, verb: str = "in use") -> str:
    """`quota_full("your quota", 4, 4, "GPU")` -> "your quota: 4 of 4 GPUs in use"."""
    return f"{owner}: {in_use} of {count(limit, noun)} {verb}"


def memory_quota_full(owner: str, in_use_mb: int, limit_mb: int) -> str:
    return f"{owner}: {gigabytes(in_use_mb)} of {gigabytes(limit_mb)} of memory in use"


def gpu_hours_used(owner: str, used_hours: float, limit_hours: float) -> str:
    return f"{owner}: {used_hours:.1f} of {limit_hours:g} GPU-hours used in the last 7 days"


def waiting_for_room(gpus: int, cpu_slots: int, largest_free_gpus: int, most_free_cpu: int) -> str:
    """Why a request finds no worker with enough free right now."""
    if gpus == 0:
        return f"waiting for {count(cpu_slots, 'CPU slot')} on one worker; most free on one worker is {most_free_cpu}"
    if gpus > largest_free_gpus:
        return f"waiting for {count(gpus, 'GPU')} on one worker; largest free block is {largest_free_gpus}"
    return (
        f"waiting for {count(gpus, 'GPU')} and {count(cpu_slots, 'CPU slot')} on one worker; "
        f"no worker with {count(gpus, 'free GPU')} has {count(cpu_slots, 'free CPU slot')}"
    )


def _node_size(gpus: int, cpu_slots: int, memory_mb: float, free: str = "") -> str:
    """ "4 GPUs", "8 free CPU slots", "4 free GPUs and 8 free CPU slots": one node's share."""
    parts = []
    if gpus:
        parts.append(count(gpus, f"{free}GPU"))
    if cpu_slots and (not gpus or cpu_slots > 1):
        parts.append(count(cpu_slots, f"{free}CPU" if not gpus else f"{free}CPU slot"))
    if memory_mb and not parts:
        parts.append(f"{gigabytes(memory_mb)} of {free}memory")
    return " and ".join(parts)


def gang_never_fits(nodes: int, gpus: int, cpu_slots: int, memory_mb: int, big_enough: int) -> str:
    """A multi-node run that fewer than `nodes` workers could ever hold one node of."""
    size = _node_size(gpus, cpu_slots, 0)
    memory = f" and {gigabytes(memory_mb)} of memory" if memory_mb else ""
    have = "no worker is" if big_enough == 0 else f"only {count(big_enough, 'worker')} {'is' if big_enough == 1 else 'are'}"
    return f"asks for {nodes} nodes with {size}{memory} each; {have} that big"


def waiting_for_gang(nodes: int, gpus: int, cpu_slots: int, memory_mb: int, available: int) -> str:
    """`waiting_for_gang(2, 0, 4, 0, 1)` -> "waiting for 2 workers with 4 free CPUs each (1 available)"."""
    return f"waiting for {nodes} workers with {_node_size(gpus, cpu_slots, memory_mb, 'free ')} each ({available} available)"


def _reserved_where(reservation: Reservation) -> str:
    if len(reservation.workers) > 1:
        return "workers " + ", ".join(reservation.workers) + " are"
    return f"{reservation.worker} is"


def holds_reservation(waiting: str, reservation: Reservation, now: float) -> str:
    """The reason shown on the reserved run itself."""
    where = _reserved_where(reservation)
    if reservation.start_at is None:
        return f"{waiting}; next to start: {where} kept for it as their jobs finish" if len(
            reservation.workers) > 1 else f"{waiting}; next to start: {where} kept for it as its jobs finish"
    return f"{waiting}; next to start: {where} reserved for it {_in_about(reservation.start_at - now)}"


def reserved_for_other(reservation: Reservation, now: float) -> str:
    """The reason shown on a run that would fit now but would delay the reserved run."""
    if reservation.start_at is None:
        return f"reserved for run {reservation.run_id}: {_reserved_where(reservation)} kept for it"
    return (
        f"reserved for run {reservation.run_id}: it starts on {reservation.worker} "
        f"{_in_about(reservation.start_at - now)} and this run could still be running then"
    )


def _in_about(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 120:
        return f"in about {minutes} min"
    return f"in about {round(minutes / 60)} h"

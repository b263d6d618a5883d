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


def over_quota(gpus: int, limit: int) -> str:
    return f"asks for {count(gpus, 'GPU')} but the user quota is {limit}"


def user_quota_full(in_use: int, limit: int) -> str:
    return f"user quota: {in_use} of {limit} GPUs in use"


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


def holds_reservation(waiting: str, reservation: Reservation, now: float) -> str:
    """The reason shown on the reserved run itself."""
    if reservation.start_at is None:
        return f"{waiting}; next to start: {reservation.worker} is kept for it as its jobs finish"
    return f"{waiting}; next to start: {reservation.worker} is reserved for it {_in_about(reservation.start_at - now)}"


def reserved_for_other(reservation: Reservation, now: float) -> str:
    """The reason shown on a run that would fit now but would delay the reserved run."""
    if reservation.start_at is None:
        return f"reserved for run {reservation.run_id}: {reservation.worker} is kept for it"
    return (
        f"reserved for run {reservation.run_id}: it starts on {reservation.worker} "
        f"{_in_about(reservation.start_at - now)} and this run could still be running then"
    )


def _in_about(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 120:
        return f"in about {minutes} min"
    return f"in about {round(minutes / 60)} h"

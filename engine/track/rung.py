"""A sweep trial's rung (ASHA's promotion variant): the job waits there for the sweep controller.

The worker sets KILN_SWEEP_RUNG for a trial that trains toward a rung, as JSON:

    {"rung": 0, "metric": "val_loss", "iteration": "epoch", "at": 1, "before": 0}

`at` is the rung's iteration; `before` counts the objective's reports earlier attempts stored (a
promoted trial resumes after them). The rung is reached by the report `reaches_rung` names (the rule
the controller applies to the stored points: scheduler/sweeps/controller.py `_with_rung_reached`);
once a checkpoint at or after that report's step is saved too, `track.log`/`track.save_checkpoint`
block: the controller pauses the trial within a tick or two and the worker stops the job. Every event
line is already flushed as written (a checkpoint's is fsynced), so the worker has what it needs. A
wait is bounded (KILN_SWEEP_RUNG_WAIT seconds, default 300: a scheduler that is down); after it the
job trains on as if it had not waited, and the controller pauses it when it next can.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeGuard

ENV = "KILN_SWEEP_RUNG"
WAIT_ENV = "KILN_SWEEP_RUNG_WAIT"
WAIT_SECONDS = 300.0
ITERATIONS = ("epoch", "step")


def reaches_rung(iteration: str, at: int, *, reports: int, step: int) -> bool:
    """Whether a report of the objective reaches the rung at iteration `at`: by epoch its `reports`-th
    report (counting it) is epoch `reports`; by step a report at `step` >= `at`."""
    return reports >= at if iteration == "epoch" else step >= at


@dataclass
class RungWait:
    """Counts the objective's reports and the checkpoints after them; `wait` blocks once both reach the rung."""

    rung: int
    metric: str
    iteration: str
    at: int
    reports: int = 0  # the objective's reports so far, earlier attempts' included
    wait_seconds: float = WAIT_SECONDS
    reached_step: int | None = None  # the step of the report that reached the rung
    checkpoint_step: int | None = None  # the latest step checkpointed
    waited: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> RungWait | None:
        """The rung KILN_SWEEP_RUNG names, or None without one; a malformed value raises ValueError."""
        text = env.get(ENV)
        if not text:
            return None
        try:
            spec = json.loads(text)
        except ValueError:
            raise ValueError(f"{ENV} must be JSON, got {text!r}") from None
        if not isinstance(spec, dict):
            raise ValueError(f"{ENV} must be a JSON object, got {text!r}")
        rung, at, before = (spec.get(name, default) for name, default in (("rung", None), ("at", None), ("before", 0)))
        if not (_count(rung) and _count(at) and _count(before) and at >= 1):
            raise ValueError(f"{ENV} needs a rung >= 0, an iteration `at` >= 1 and `before` >= 0, got {text!r}")
        if not isinstance(spec.get("metric"), str) or not spec["metric"]:
            raise ValueError(f"{ENV} needs the objective's name as `metric`, got {text!r}")
        if spec.get("iteration") not in ITERATIONS:
            raise ValueError(f"{ENV}'s `iteration` must be 'epoch' or 'step', got {text!r}")
        return cls(rung=rung, metric=spec["metric"], iteration=spec["iteration"], at=at, reports=before,
                   wait_seconds=wait_seconds(env))

    def logged(self, step: int, values: Mapping[str, float]) -> None:
        if self.metric not in values:
            return
        self.reports += 1
        if self.reached_step is None and reaches_rung(self.iteration, self.at, reports=self.reports, step=step):
            self.reached_step = step

    def checkpointed(self, step: int) -> None:
        self.checkpoint_step = step if self.checkpoint_step is None else max(self.checkpoint_step, step)

    @property
    def ready(self) -> bool:
        """The rung's report is logged and a checkpoint covers it (the controller's condition to pause), once."""
        return (not self.waited and self.reached_step is not None and self.checkpoint_step is not None
                and self.checkpoint_step >= self.reached_step)

    def wait(self) -> None:
        """Block until the worker stops the job, at most `wait_seconds`; then return (training goes on)."""
        self.waited = True
        _say(f"kiln: reached rung {self.rung} ({self.iteration} {self.at}): waits for the sweep controller "
             f"(at most {self.wait_seconds:g} s)")
        deadline = self.clock() + self.wait_seconds
        while (left := deadline - self.clock()) > 0:
            self.sleep(min(left, 1.0))
        _say(f"kiln: no word from the sweep controller in {self.wait_seconds:g} s at rung {self.rung}: "
             "training goes on")


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def wait_seconds(env: Mapping[str, str]) -> float:
    text = env.get(WAIT_ENV)
    if not text:
        return WAIT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{WAIT_ENV} must be a number of seconds, got {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{WAIT_ENV} must be a number of seconds >= 0, got {text!r}")
    return seconds


def _say(line: str) -> None:
    print(line, file=sys.stdout, flush=True)

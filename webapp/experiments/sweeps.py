"""Sweeps as their users see them: listing, one sweep's progress, and pause/resume/stop/max_runs.

One place for "a trial's objective value": its best logged value of the sweep's metric in the goal's
direction (MetricSummary's min or max), used by the sweep view, the API, the CLI and the controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import MetricSummary, Run, RunState, Sweep, SweepState
from webapp.experiments.spec import MAX_SWEEP_RUNS
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access

ACTIVE = (RunState.QUEUED, RunState.SCHEDULED, RunState.RUNNING, RunState.LOST)


@dataclass(frozen=True)
class SweepSummary:
    sweep: Sweep
    state: str
    trials: int
    by_state: dict[str, int]
    best_run: Run | None
    best_value: float | None

    @property
    def metric(self) -> dict[str, str] | None:
        return sweep_metric(self.sweep)

    def as_json(self) -> dict[str, Any]:
        best = self.best_run
        return {
            "id": self.sweep.id, "name": self.sweep.name, "project_id": self.sweep.project_id,
            "method": (self.sweep.spec or {}).get("method", "grid"), "state": self.state,
            "controlled": self.sweep.controlled, "max_runs": self.sweep.max_runs, "metric": self.metric,
            "trials": self.trials, "by_state": self.by_state,
            "best_run": {"id": best.id, "number": best.number, "name": best.name} if best else None,
            "best_value": self.best_value, "created_at": self.sweep.created_at.isoformat(),
        }


def sweep_metric(sweep: Sweep) -> dict[str, str] | None:
    metric = (sweep.spec or {}).get("metric")
    return metric if isinstance(metric, dict) and "name" in metric and "goal" in metric else None


def objective_values(run_ids: list[int], metric: dict[str, str]) -> dict[int, float]:
    """Each run's best value of the metric in its goal's direction (runs that logged none are absent)."""
    field = "max" if metric["goal"] == "maximize" else "min"
    rows = MetricSummary.objects.filter(run_id__in=run_ids, key=metric["name"]).values_list("run_id", field)
    return {run_id: value for run_id, value in rows if value is not None}


def best_of(values: dict[int, float], metric: dict[str, str]) -> int | None:
    if not values:
        return None
    pick = max if metric["goal"] == "maximize" else min
    return pick(values, key=lambda run_id: (values[run_id], -run_id))


def sweep_summaries(project: Project) -> list[SweepSummary]:
    sweeps = list(Sweep.objects.filter(project=project).order_by("-created_at", "-id"))
    runs_by_sweep: dict[int, list[Run]] = {sweep.id: [] for sweep in sweeps}
    for run in Run.objects.filter(sweep__in=sweeps).only("id", "number", "name", "state", "sweep_id"):
        runs_by_sweep[run.sweep_id].append(run)  # type: ignore[index]
    return [_summary(sweep, runs_by_sweep[sweep.id]) for sweep in sweeps]


def sweep_summary(sweep: Sweep) -> SweepSummary:
    return _summary(sweep, list(Run.objects.filter(sweep=sweep).only("id", "number", "name", "state", "sweep_id")))


def _summary(sweep: Sweep, runs: list[Run]) -> SweepSummary:
    by_state: dict[str, int] = {}
    for run in runs:
        by_state[run.state] = by_state.get(run.state, 0) + 1
    metric = sweep_metric(sweep)
    values = objective_values([run.id for run in runs], metric) if metric else {}
    best_id = best_of(values, metric) if metric else None
    best = next((run for run in runs if run.id == best_id), None)
    return SweepSummary(sweep=sweep, state=_state(sweep, runs), trials=len(runs), by_state=by_state,
                        best_run=best, best_value=values.get(best_id) if best_id else None)


def _state(sweep: Sweep, runs: list[Run]) -> str:
    """A grid/random sweep has no controller: it runs while any of its runs is active."""
    if sweep.controlled:
        return sweep.state
    if sweep.state == SweepState.STOPPED:
        return sweep.state
    return SweepState.RUNNING if any(run.state in ACTIVE for run in runs) else SweepState.FINISHED


def sweep_control(*, user: Any, sweep: Sweep, action: str, max_runs: int | None = None) -> Sweep:
    """pause | resume | stop a sweep, or raise its max_runs; ValidationError (naming the field) otherwise.

    Stop: no new trials, its queued trials are cancelled, running ones finish. A grid/random sweep
    can only be stopped (its runs were all queued at submit).
    """
    require_access(user, sweep.project, Access.EDIT)
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().get(id=sweep.id)
        if action == "stop":
            if sweep.state not in (SweepState.STOPPED, SweepState.FINISHED):
                sweep.state = SweepState.STOPPED
                sweep.save(update_fields=["state"])
            queued = list(Run.objects.filter(sweep=sweep, state=RunState.QUEUED).values_list("id", flat=True))
            for run_id in queued:
                run_transition(run_id=run_id, from_states=(RunState.QUEUED,), to_state=RunState.CANCELLED,
                               reason=f"sweep stopped by {user.get_username()}")
            return sweep
        if not sweep.controlled:
            raise ValidationError({"action": "a grid or random sweep queued all its runs at submit: it can only be stopped"})
        if sweep.state in (SweepState.STOPPED, SweepState.FINISHED) and action in ("pause", "resume"):
            raise ValidationError({"action": f"the sweep is {sweep.state}"})
        if action == "pause":
            sweep.state = SweepState.PAUSED
        elif action == "resume":
            sweep.state = SweepState.RUNNING
        elif action == "max_runs":
            made = Run.objects.filter(sweep=sweep).count()
            if max_runs is None or isinstance(max_runs, bool) or not made <= max_runs <= MAX_SWEEP_RUNS:
                raise ValidationError({"max_runs": f"must be a whole number from {made} (the trials made) to {MAX_SWEEP_RUNS}"})
            sweep.max_runs = max_runs
            if sweep.state == SweepState.FINISHED and max_runs > made:
                sweep.state, sweep.finished_at = SweepState.RUNNING, None
        else:
            raise ValidationError({"action": "must be pause, resume, stop or max_runs"})
        sweep.save(update_fields=["state", "max_runs", "finished_at"])
    return sweep


def sweep_finish(sweep: Sweep) -> None:
    """The controller's: mark a sweep over (a stopped one stays `stopped`)."""
    state = SweepState.STOPPED if sweep.state == SweepState.STOPPED else SweepState.FINISHED
    Sweep.objects.filter(id=sweep.id).update(state=state, finished_at=timezone.now())

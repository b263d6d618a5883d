"""Submitting experiments: the one service behind the web form, the API, the client and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from webapp.experiments.code import CodeBundle, code_bundle_from_upload
from webapp.experiments.models import Run, RunEvent, RunState, RunTag, Sweep, run_memory_gb
from webapp.experiments.spec import (
    ExperimentSpec,
    SpecError,
    apply_point,
    expand_points,
    flat_params,
    validate_spec,
)
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access

SWEEP_POINT = "sweep_point"  # the key, in a sweep run's stored spec, of its point's {param: value}


@dataclass(frozen=True)
class CodeUpload:
    filename: str
    data: bytes


@dataclass(frozen=True)
class Submitted:
    runs: list[Run]
    sweep: Sweep | None


def run_submit(
    *,
    user: User,
    project: Project,
    spec: dict[str, Any],
    code: CodeUpload | None = None,
    cloned_from: Run | None = None,
) -> Submitted:
    """Validate and store a spec (and its code), then queue one run, or one per sweep point.

    Raises SpecError (naming each bad field) or a permission error; either way nothing is stored.
    """
    require_access(user, project, Access.EDIT)
    validated = validate_spec(spec, has_code=code is not None)
    bundle = code_bundle_from_upload(code.filename, code.data, entrypoint=validated.entrypoint) if code else None
    points = expand_points(validated)
    if bundle:
        _store_code(bundle)
    with transaction.atomic():
        first = _reserve_numbers(project, len(points))
        sweep = None
        if validated.sweep:
            controlled = validated.sweep.controlled
            sweep = Sweep.objects.create(
                project=project,
                owner=user,
                name=validated.name or (f"{validated.sweep.method} sweep" if controlled else f"sweep of {len(points)} runs"),
                spec=validated.sweep.model_dump(mode="json"),
                controlled=controlled,
                max_runs=validated.sweep.max_runs if controlled else len(points),
                template=_trial_template(validated, bundle) if controlled else {},
            )
        runs = [
            _new_run(user, project, apply_point(validated, point) if sweep else validated, bundle, first + i, sweep, point, cloned_from)
            for i, point in enumerate(points)
        ]
        Run.objects.bulk_create(runs)
        runs = list(Run.objects.filter(project=project, number__gte=first, number__lt=first + len(points)).order_by("number"))
        RunTag.objects.bulk_create(
            [RunTag(run=run, name=tag) for run in runs for tag in run.spec.get("tags", [])], ignore_conflicts=True
        )
        RunEvent.objects.bulk_create(
            [RunEvent(run=run, from_state="", to_state=RunState.QUEUED, reason="submitted") for run in runs]
        )
    return Submitted(runs=runs, sweep=sweep)


def sweep_trials_create(*, sweep: Sweep, points: list[dict[str, Any]]) -> list[Run]:
    """Queue one run per point of a controlled sweep (its controller's call, inside its transaction)."""
    if not points:
        return []
    template = sweep.template
    spec = ExperimentSpec.model_validate(template["spec"])
    bundle = None
    if template.get("code_path"):
        kind = "zip" if template["code_path"].endswith(".zip") else "py"
        bundle = CodeBundle(data=b"", kind=kind, entrypoint=template["entrypoint"], sha256=template["code_sha256"])
    project = sweep.project
    first = _reserve_numbers(project, len(points))
    runs = [_new_run(sweep.owner, project, apply_point(spec, point), bundle, first + i, sweep, point, None)
            for i, point in enumerate(points)]
    Run.objects.bulk_create(runs)
    runs = list(Run.objects.filter(project=project, number__gte=first, number__lt=first + len(points)).order_by("number"))
    RunTag.objects.bulk_create(
        [RunTag(run=run, name=tag) for run in runs for tag in run.spec.get("tags", [])], ignore_conflicts=True
    )
    RunEvent.objects.bulk_create(
        [RunEvent(run=run, from_state="", to_state=RunState.QUEUED, reason=f"sweep trial of {sweep.name}") for run in runs]
    )
    return runs


def _trial_template(spec: ExperimentSpec, bundle: CodeBundle | None) -> dict[str, Any]:
    """What a controlled sweep's controller needs to make a trial later: the spec and the stored code."""
    return {
        "spec": spec.model_dump(mode="json", exclude_none=True),
        "code_path": bundle.storage_name if bundle else "",
        "code_sha256": bundle.sha256 if bundle else "",
        "entrypoint": bundle.entrypoint if bundle else "",
    }


def run_resubmit(*, user: User, run: Run) -> Run:
    """Re-run: queue a new run with the same spec and code as `run` (a sweep point's: with the point's params)."""
    require_access(user, run.project, Access.EDIT)
    if run.kind == "external":
        raise SpecError([{"field": "run", "message": "an external run was logged by an outside client; Kiln cannot re-run it"}])
    # NOTE: a sweep run's stored spec already holds its point's values; `sweep_point` only records them.
    spec = {key: value for key, value in run.spec.items() if key != SWEEP_POINT}
    code = None
    if run.code_path:
        with default_storage.open(run.code_path, "rb") as handle:
            code = CodeUpload(filename=f"{run.entrypoint}" if run.code_path.endswith(".py") else "code.zip", data=handle.read())
    return run_submit(user=user, project=run.project, spec=spec, code=code, cloned_from=run).runs[0]


def _store_code(bundle: CodeBundle) -> None:
    if not default_storage.exists(bundle.storage_name):
        default_storage.save(bundle.storage_name, ContentFile(bundle.data))


def _reserve_numbers(project: Project, count: int) -> int:
    """Hand out `count` consecutive run numbers; the row lock serialises concurrent submits."""
    Project.objects.filter(id=project.id).update(run_counter=F("run_counter") + count)
    last = Project.objects.filter(id=project.id).values_list("run_counter", flat=True).get()
    return last - count + 1


def point_name(base_name: str, point: dict[str, Any]) -> str:
    """A sweep run's name: its base and its point, "cnn-baseline lr=0.003" (a param by its last dotted
    part unless two share it), cut to the name column's length."""
    shorts = [key.rsplit(".", 1)[-1] for key in point]
    parts = [f"{short if shorts.count(short) == 1 else key}={point_value(value)}" for short, (key, value) in zip(shorts, point.items(), strict=True)]
    return " ".join([base_name, *parts])[:200]


def point_value(value: Any) -> str:
    """A sweep point's value as its run's name shows it (six significant digits for a float)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _new_run(
    user: User,
    project: Project,
    spec: ExperimentSpec,
    bundle: CodeBundle | None,
    number: int,
    sweep: Sweep | None,
    point: dict[str, Any],
    cloned_from: Run | None,
) -> Run:
    stored = spec.model_dump(mode="json", exclude_none=True)
    resources = spec.resources
    # what ONE worker holds, where the scheduler reads it (`resources.cpus`, the gpus column)
    stored["resources"].update(gpus=resources.node_gpus, cpus=resources.node_cpus)
    if sweep:
        stored[SWEEP_POINT] = point
    base_name = spec.name or (f"{spec.recipe.model}-{spec.recipe.dataset}" if spec.recipe else (bundle.entrypoint if bundle else "run"))
    return Run(
        project=project,
        owner=user,
        sweep=sweep,
        cloned_from=cloned_from,
        number=number,
        name=point_name(base_name, point) if sweep else base_name,
        kind="code" if bundle else "recipe",
        spec=stored,
        params=flat_params(spec),
        code_path=bundle.storage_name if bundle else "",
        code_sha256=bundle.sha256 if bundle else "",
        entrypoint=bundle.entrypoint if bundle else "",
        gpus=resources.node_gpus,
        nodes=resources.nodes,
        processes_per_node=spec.distributed.processes_per_node if spec.distributed else 1,
        max_minutes=spec.resources.max_minutes,
        memory_gb=run_memory_gb(spec.resources.memory_gb),
        priority=spec.priority,
        notes=spec.notes,
        state=RunState.QUEUED,
        pending_reason="waiting for the scheduler",
    )


__all__ = ["CodeUpload", "SpecError", "Submitted", "run_resubmit", "run_submit", "sweep_trials_create"]

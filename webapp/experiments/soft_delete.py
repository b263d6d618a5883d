"""Soft delete, as MLflow's lifecycle_stage "deleted": a run or project kept restorable, then purged for good.

The rule that a soft-deleted row is invisible to Kiln lives in the models' default managers:
`Run.objects` and `Project.objects` leave out rows with `deleted_at` set, so every page, API,
selector, count and the scheduler skip them; `Run.all_objects` and `Project.all_objects` (the
MLflow views, the purge) see them. This module is the one writer of `deleted_at`.

A soft-deleted run has always ended: an external run still running is cancelled first, a Kiln run
still active is refused (cancel it first), as `run_delete` refuses it. Deleting a project deletes
its runs and restoring it restores them all (MLflow's delete_experiment / restore_experiment).
The scheduler's loop calls `deleted_purge`, which deletes for good, with their artifact files,
what was deleted more than KILN_DELETED_RETENTION_DAYS ago. Kiln's own deletes stay hard deletes.

Example:
    >>> run_soft_delete(user=user, run=run)      # gone from Kiln's pages; MLflow's get_run says "deleted"
    >>> run_restore(user=user, run=run)          # back
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from webapp.experiments.external import EXTERNAL, external_run_end
from webapp.experiments.models import FINAL_STATES, Artifact, Run, RunState
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access


def run_soft_delete(*, user: User, run: Run) -> None:
    """Mark an ended run deleted (needs edit access); a running external run is cancelled first. Idempotent."""
    require_access(user, run.project, Access.EDIT)
    if run.kind == EXTERNAL and run.state == RunState.RUNNING:
        external_run_end(user=user, run=run, state=RunState.CANCELLED, reason="deleted by its client")
    now = timezone.now()
    if not Run.all_objects.filter(id=run.id, state__in=FINAL_STATES).update(deleted_at=run.deleted_at or now):
        state = Run.all_objects.filter(id=run.id).values_list("state", flat=True).get()
        raise ValidationError({"state": f"Run is {state}; only a finished run can be deleted (cancel it first)."})
    run.deleted_at = run.deleted_at or now


def run_restore(*, user: User, run: Run) -> None:
    """Bring a soft-deleted run back (needs edit access); a run that is not deleted stays as it is."""
    require_access(user, run.project, Access.EDIT)
    if run.project.deleted_at is not None:
        raise ValidationError({"run_id": f"Run {run.id} belongs to a deleted experiment: restore that first."})
    Run.all_objects.filter(id=run.id).update(deleted_at=None)
    run.deleted_at = None


def project_soft_delete(*, user: User, project: Project) -> None:
    """Mark a project and its runs deleted (needs admin access); running external runs are cancelled first.

    Refused, changing nothing, while a run Kiln schedules is still active in it.
    """
    require_access(user, project, Access.ADMIN)
    active = Run.objects.filter(project=project).exclude(state__in=FINAL_STATES)
    if active.exclude(kind=EXTERNAL, state=RunState.RUNNING).exists():
        raise ValidationError({"experiment_id": f"Project {project} has runs still queued or running: cancel them first."})
    for run in active.select_related("project"):
        external_run_end(user=user, run=run, state=RunState.CANCELLED, reason="its experiment was deleted by a client")
    now = timezone.now()
    with transaction.atomic():  # NOTE: runs before their project, the lock order of a run's writers (runs_version)
        Run.objects.filter(project=project).update(deleted_at=now)
        Project.objects.filter(id=project.id).update(deleted_at=now)
    project.deleted_at = project.deleted_at or now


def project_restore(*, user: User, project: Project) -> None:
    """Bring a soft-deleted project back with the runs its deletion took (needs admin access), as MLflow's
    restore_experiment: a run deleted on its own before the project stays deleted."""
    require_access(user, project, Access.ADMIN)
    with transaction.atomic():
        deleted_at = Project.all_objects.select_for_update().filter(id=project.id).values_list("deleted_at", flat=True).get()
        Project.all_objects.filter(id=project.id).update(deleted_at=None)
        if deleted_at is not None:
            Run.all_objects.filter(project=project, deleted_at__gte=deleted_at).update(deleted_at=None)
    project.deleted_at = None


def deleted_purge(*, now: datetime | None = None) -> int:
    """Delete for good the runs and projects soft-deleted over KILN_DELETED_RETENTION_DAYS ago; returns how many runs."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CONFIG.deleted_retention_days)
    projects = Project.all_objects.filter(deleted_at__lt=cutoff)
    runs = Run.all_objects.filter(deleted_at__lt=cutoff).exclude(project__in=projects)  # those go with their project
    artifacts = Artifact.objects.filter(run__in=runs) | Artifact.objects.filter(run__project__in=projects)
    paths = list(artifacts.values_list("storage_path", flat=True))
    with transaction.atomic():
        _, alone = runs.delete()  # related rows go by the ORM's cascade (points by the run table's delete trigger)
        _, with_projects = projects.delete()
    for path in paths:
        default_storage.delete(path)
    return alone.get("experiments.Run", 0) + with_projects.get("experiments.Run", 0)

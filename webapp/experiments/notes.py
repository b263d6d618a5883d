"""Writes for a run's free-text notes, the one part of a run its editors may change after submit."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from webapp.experiments.models import Run
from webapp.projects.permissions import Access, require_access

MAX_NOTES_CHARS = 10_000


def run_notes_set(*, user: User, run: Run, notes: str) -> Run:
    require_access(user, run.project, Access.EDIT)
    if len(notes) > MAX_NOTES_CHARS:
        raise ValidationError({"notes": f"Notes hold at most {MAX_NOTES_CHARS:,} characters."})
    run.notes = notes
    Run.objects.filter(id=run.id).update(notes=notes)
    return run

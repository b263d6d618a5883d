"""An experiment's tags: the note tag is the project's description, every other tag an `ExperimentTag` row."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from webapp.mlflow.models import ExperimentTag
from webapp.projects.models import Project
from webapp.projects.permissions import Access, require_access
from webapp.projects.services import project_update

NOTE_TAG = "mlflow.note.content"
MAX_KEY_CHARS = 250  # mlflow.utils.validation.MAX_EXPERIMENT_TAG_KEY_LENGTH
MAX_VALUE_CHARS = 20_000  # MAX_EXPERIMENT_TAG_VAL_LENGTH
MAX_TAGS = 1000


def experiment_tags(project: Project) -> list[dict[str, str]]:
    """MLflow's [{"key", "value"}] for a project (uses a prefetched `mlflow_tags` when there is one)."""
    tags = [{"key": tag.name, "value": tag.value} for tag in sorted(project.mlflow_tags.all(), key=lambda t: t.name)]
    if project.description:
        tags.append({"key": NOTE_TAG, "value": project.description})
    return tags


def experiment_tags_set(*, user: User, project: Project, tags: Mapping[str, str]) -> None:
    """Set tags (a tag set again takes the new value); the note needs admin access (it is the description), the rest edit."""
    require_access(user, project, Access.EDIT)
    tags = dict(tags)
    for key, value in tags.items():
        if not key or len(key) > MAX_KEY_CHARS or "\0" in key:
            raise ValidationError({"key": f"An experiment tag key has 1-{MAX_KEY_CHARS} characters and no NUL, "
                                          f"got {key[:300]!r}."})
        if len(value) > MAX_VALUE_CHARS or "\0" in value:
            raise ValidationError({key: f"An experiment tag value has at most {MAX_VALUE_CHARS} characters and no NUL."})
    note = tags.pop(NOTE_TAG, None)
    with transaction.atomic():
        if note is not None:
            project_update(user=user, project=project, description=note)
        if not tags:
            return
        known = set(ExperimentTag.objects.filter(project=project).values_list("name", flat=True))
        if len(known | set(tags)) > MAX_TAGS:
            raise ValidationError({"tags": f"An experiment has at most {MAX_TAGS} tags."})
        ExperimentTag.objects.bulk_create(
            [ExperimentTag(project=project, name=key, value=value) for key, value in tags.items()],
            update_conflicts=True, unique_fields=["project", "name"], update_fields=["value"],
        )


def experiment_tag_delete(*, user: User, project: Project, key: str) -> bool:
    """Remove a tag; False when the experiment has no such tag."""
    require_access(user, project, Access.ADMIN if key == NOTE_TAG else Access.EDIT)
    if key == NOTE_TAG:
        if not project.description:
            return False
        project_update(user=user, project=project, description="")
        return True
    deleted, _ = ExperimentTag.objects.filter(project=project, name=key).delete()
    return bool(deleted)

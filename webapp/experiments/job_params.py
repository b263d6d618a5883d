"""Params a running job reports (`engine.track.log_params`, `SummaryWriter.add_hparams`): added to its `Run.params`.

The worker reads them from the job's events file, which the job's code writes: nothing in it is trusted.
The rule is MLflow's: at most 100 params an event, keys of 1-250 characters, text values of at most
6,000, numbers finite; a run holds at most MAX_RUN_PARAMS; and a param keeps its value, so an event that
would change one (a submitted param included) is refused whole and changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

from django.db import transaction
from django.utils import timezone

from webapp.experiments.external import MAX_KEY_CHARS, MAX_PARAM_CHARS
from webapp.experiments.models import Run
from webapp.experiments.results import ResultError

Scalar = bool | int | float | str
MAX_PARAMS_PER_EVENT = 100  # MLflow's log-batch limit
MAX_RUN_PARAMS = 1000


def job_params_checked(values: Any) -> dict[str, Scalar]:
    """An event's params as a dict of JSON scalars; a ValueError names the first thing wrong."""
    if not isinstance(values, dict):
        raise ValueError("params must be an object of name: value")
    if len(values) > MAX_PARAMS_PER_EVENT:
        raise ValueError(f"an event holds at most {MAX_PARAMS_PER_EVENT} params, got {len(values)}")
    for key, value in values.items():
        if not 0 < len(key) <= MAX_KEY_CHARS or "\0" in key:
            raise ValueError(f"param name {key[:40]!r} must have 1-{MAX_KEY_CHARS} characters and no NUL")
        if isinstance(value, str):
            if len(value) > MAX_PARAM_CHARS:
                raise ValueError(f"param {key[:40]!r} has more than {MAX_PARAM_CHARS} characters")
        elif not isinstance(value, bool | int | float) or not math.isfinite(value):
            raise ValueError(f"param {key[:40]!r} must be text, a boolean or a finite number, got {value!r:.40}")
    return dict(values)


def job_params_add(*, run_id: int, params: dict[str, Scalar]) -> int:
    """Add checked params to the run's; returns how many were new. A ResultError when one would change value."""
    with transaction.atomic():
        current = dict(Run.objects.select_for_update().filter(id=run_id).values_list("params", flat=True).get() or {})
        for key, value in params.items():
            if key in current and not _same(current[key], value):
                raise ResultError(f"param {key!r} is already {current[key]!r}; a param keeps its value, "
                                  f"so {value!r} was not stored")
        new = [key for key in params if key not in current]
        if len(current) + len(new) > MAX_RUN_PARAMS:
            raise ResultError(f"a run holds at most {MAX_RUN_PARAMS} params; {len(new)} more would make "
                              f"{len(current) + len(new)}")
        if new:
            current.update({key: params[key] for key in new})
            Run.objects.filter(id=run_id).update(params=current, updated_at=timezone.now())
    return len(new)


def _same(stored: Any, value: Scalar) -> bool:
    """Equal values of the same kind: 2 and 2.0 are the same number, True and 1 are not the same param."""
    return isinstance(stored, bool) == isinstance(value, bool) and isinstance(stored, str) == isinstance(value, str) \
        and stored == value

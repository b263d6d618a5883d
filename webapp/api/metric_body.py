"""The body of `POST /api/runs/{id}/metrics`, read as columns without an object per point.

Three shapes, told apart by their fields (all JSON, optionally gzip, see `webapp.api.parser`):
- rows: `{"points": [{"key", "step", "value", "wall_time"?}, ...]}`;
- one series: `{"key": "loss", "steps": [...], "values": [...], "wall_times": [...]?}`;
- several: `{"series": [{"key", "steps", "values", "wall_times"?}, ...]}`.
All three store the same points; a batch holds at most MAX_METRIC_BATCH of them. Validation runs
in pydantic-core over typed dicts (no model instance per point; ninja's Schema costs 60 µs each),
so its errors are the API's usual 422 naming the field.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, NotRequired

import numpy as np
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from webapp.api.errors import ApiError
from webapp.experiments.results import MAX_METRIC_BATCH

Key = Annotated[str, Field(min_length=1, max_length=200)]
Step = Annotated[int, Field(ge=-(2**62), le=2**62)]
Value = Annotated[float, Field(description='A number, or "NaN", "Infinity", "-Infinity" (JSON NaN/Infinity too)')]
Columns = tuple[str, np.ndarray, np.ndarray, np.ndarray]
_FORBID = ConfigDict(extra="forbid")


@with_config(_FORBID)
class PointIn(TypedDict):
    key: Key
    step: Step
    value: Value
    wall_time: NotRequired[Annotated[float | None, Field(description="Seconds since the epoch; now when omitted")]]


@with_config(_FORBID)
class PointsIn(TypedDict):
    points: Annotated[list[PointIn], Field(max_length=MAX_METRIC_BATCH, description=f"At most {MAX_METRIC_BATCH:,} points")]


@with_config(_FORBID)
class SeriesIn(TypedDict):
    key: Key
    steps: list[Step]
    values: list[Value]
    wall_times: NotRequired[Annotated[list[float] | None, Field(description="One per step; now when omitted")]]


@with_config(_FORBID)
class SeriesBatchIn(TypedDict):
    series: Annotated[list[SeriesIn], Field(max_length=MAX_METRIC_BATCH)]


_ROWS, _ONE, _MANY = TypeAdapter(PointsIn), TypeAdapter(SeriesIn), TypeAdapter(SeriesBatchIn)


def metric_columns(body: Any) -> tuple[int, list[Columns]]:
    """(points received, [(key, steps, values, walls)]) of a parsed body; a 422 naming the field when it is malformed."""
    now = time.time()
    if isinstance(body, dict) and "series" in body:
        series = _valid(_MANY, body)["series"]
        columns = [_series_columns(one, now, f"series.{i}.") for i, one in enumerate(series)]
    elif isinstance(body, dict) and "key" in body:
        columns = [_series_columns(_valid(_ONE, body), now, "")]
    else:
        columns = _row_columns(_valid(_ROWS, body)["points"], now)
    received = sum(len(c[1]) for c in columns)
    if received > MAX_METRIC_BATCH:
        raise ApiError(422, "invalid", f"a batch holds at most {MAX_METRIC_BATCH:,} points, got {received:,}",
                       fields=[{"field": "series", "message": f"more than {MAX_METRIC_BATCH:,} points in all"}])
    return received, columns


def _valid(adapter: TypeAdapter, body: Any) -> Any:
    try:
        return adapter.validate_python(body)
    except ValidationError as exc:  # the shape ninja gives a body it validated: webapp.api.errors names the fields
        raise NinjaValidationError([{**e, "loc": ("body", "payload", *e["loc"])} for e in exc.errors(include_url=False)]) from None


def _series_columns(series: SeriesIn, now: float, where: str) -> Columns:
    steps, values, walls = series["steps"], series["values"], series.get("wall_times")
    for field, column in (("values", values), ("wall_times", walls)):
        if column is not None and len(column) != len(steps):
            raise ApiError(422, "invalid", f"{where}{field} has {len(column):,} items but steps has {len(steps):,}",
                           fields=[{"field": f"{where}{field}", "message": f"must have one item per step ({len(steps):,})"}])
    wall_array = np.full(len(steps), now) if walls is None else np.array(walls, np.float64)
    return series["key"], np.array(steps, np.int64), np.array(values, np.float64), wall_array


def _row_columns(points: list[PointIn], now: float) -> list[Columns]:
    """Rows turned into one column set per key, in the order the points came."""
    keys = [p["key"] for p in points]
    steps = np.array([p["step"] for p in points], np.int64)
    values = np.array([p["value"] for p in points], np.float64)
    walls = np.array([now if (w := p.get("wall_time")) is None else w for p in points], np.float64)
    distinct = set(keys)
    if len(distinct) <= 1:
        return [(keys[0], steps, values, walls)] if keys else []
    where: dict[str, list[int]] = {key: [] for key in distinct}
    for i, key in enumerate(keys):
        where[key].append(i)
    return [(key, steps[index], values[index], walls[index]) for key, index in where.items()]


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its local `$defs` references written out (the shapes are not recursive)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inlined(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    return schema


def _body_schema() -> dict[str, Any]:
    shapes = []
    for adapter in (_ROWS, _ONE, _MANY):
        schema = adapter.json_schema()
        shapes.append(_inlined(schema, schema.get("$defs", {})))
    return {"oneOf": shapes}


OPENAPI = {"requestBody": {"required": True, "content": {"application/json": {"schema": _body_schema()}}}}

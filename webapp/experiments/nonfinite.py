"""The one rule for NaN and ±infinity metric values (training losses do go NaN or overflow).

- Accepted wherever a value comes in: the API (JSON `NaN`, `Infinity`, `-Infinity`, `1e999`, or the
  strings "NaN", "Infinity", "-Infinity") and the job's events (`engine.track.log`).
- Stored: NaN as NULL (SQLite cannot hold NaN; one rule for both databases), ±inf as IEEE ±infinity
  (PostgreSQL float8 and SQLite REAL both keep them).
- Summaries: `last` is the last value as it is (NaN or ±inf included); `min`/`max` are over the
  finite values only (null when there is none), so one overflow does not hide the best loss.
- JSON (the REST API, the run list): a value is a number or one of the strings "NaN", "Infinity",
  "-Infinity": the proto3 JSON mapping, which MLflow's REST API and protobuf clients read. A
  summary's `min`/`max` are numbers or null.
- CSV export: the same three words; Python's float(), pandas and spreadsheets read them back.
- Charts: a non-finite point is drawn as a gap (null in the chart payload); the downsampled
  overview lets ±inf win its bucket, so an overflow shows as a gap at any zoom. Tables show
  "NaN", "inf" and "-inf".
"""

from __future__ import annotations

import math
from typing import Literal

NonFinite = Literal["NaN", "Infinity", "-Infinity"]
NAN: NonFinite = "NaN"
INFINITY: NonFinite = "Infinity"
MINUS_INFINITY: NonFinite = "-Infinity"


def json_value(value: float | None) -> float | NonFinite:
    """A stored point value (None: NaN) as JSON carries it: a number, or "NaN", "Infinity", "-Infinity"."""
    if value is None or math.isnan(value):
        return NAN
    if math.isinf(value):
        return INFINITY if value > 0 else MINUS_INFINITY
    return value


def text_value(value: float | None) -> str:
    """A stored point value (None: NaN) as CSV writes it: repr() of a number, or one of the three words."""
    shown = json_value(value)
    return shown if isinstance(shown, str) else repr(shown)


def finite_or_none(value: float | None) -> float | None:
    """A summary's min/max, or a chart's y: the value when it is finite, else None (JSON null, a gap)."""
    return value if value is not None and math.isfinite(value) else None

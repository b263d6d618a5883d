"""A compare view's state: which runs, which charts, which settings. The URL carries all of it.

`?runs=3,4,9&key=loss&key=val/acc&x=step&smooth=0.6&log=1&group=lr&best=loss&mode=min&sx=lr&sy=loss&hide=run-4`
(or `sweep=7` in place of `runs`). A saved dashboard stores `CompareState.as_json()`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict

from webapp.ids import parse_id

MAX_RUNS = 200
MAX_KEYS = 50
_TIME_AXES = ("step", "wall", "rel")
_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")
_LEGEND_ENTRY = re.compile(r"^(run-[1-9][0-9]{0,18}|group-[^\x00-\x1f]{0,200})$")


class StateError(ValueError):
    """A malformed compare view parameter; the message names it."""


@dataclass(frozen=True)
class CompareState:
    runs: tuple[int, ...] = ()
    sweep: int | None = None
    keys: tuple[str, ...] = ()  # empty: every metric the runs logged
    x: str = "step"  # step | wall | rel | metric:<key>
    smooth: float = 0.0
    log: bool = False
    group: str = ""
    best: str = ""
    mode: str = "min"
    sx: str = ""  # scatter: a param ...
    sy: str = ""  # ... against a metric
    hide: tuple[str, ...] = ()  # legend entries switched off on every chart: "run-<id>", or "group-<value>" when grouped

    @property
    def x_metric(self) -> str | None:
        return self.x.removeprefix("metric:") if self.x.startswith("metric:") else None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        return data | {"runs": list(self.runs), "keys": list(self.keys), "hide": list(self.hide)}

    def as_query(self) -> str:
        pairs: list[tuple[str, str]] = []
        if self.runs:
            pairs.append(("runs", ",".join(map(str, self.runs))))
        if self.sweep is not None:
            pairs.append(("sweep", str(self.sweep)))
        pairs += [("key", key) for key in self.keys]
        pairs.append(("x", self.x))
        if self.smooth:
            pairs.append(("smooth", f"{self.smooth:g}"))
        if self.log:
            pairs.append(("log", "1"))
        for name in ("group", "best", "sx", "sy"):
            if getattr(self, name):
                pairs.append((name, getattr(self, name)))
        if self.best:
            pairs.append(("mode", self.mode))
        pairs += [("hide", entry) for entry in self.hide]
        return urlencode(pairs)

    def merged(self, query: QueryDict) -> CompareState:
        """This state with whatever `query` sets explicitly (a saved dashboard opened with overrides)."""
        given = state_from_query(query)
        changes: dict[str, Any] = {}
        for name in ("x", "smooth", "log", "group", "best", "mode", "sx", "sy"):
            if name in query:
                changes[name] = getattr(given, name)
        if "runs" in query or "sweep" in query:
            changes.update(runs=given.runs, sweep=given.sweep)
        if "key" in query:
            changes["keys"] = given.keys
        if "hide" in query:
            changes["hide"] = given.hide
        return replace(self, **changes)


def state_from_query(query: QueryDict | dict[str, Any]) -> CompareState:
    """Parse a compare URL's query (or a saved dashboard's JSON); raises StateError naming the field."""
    get = query.get
    if isinstance(query, QueryDict):
        keys: list[Any] = query.getlist("key")
        hide: list[Any] = query.getlist("hide")
    else:
        saved: Any = query.get("keys", [])
        hidden: Any = query.get("hide", [])
        if not isinstance(saved, list):
            raise StateError("keys must be a list of metric keys")
        if not isinstance(hidden, list):
            raise StateError("hide must be a list of legend entries")
        keys, hide = saved, hidden
    return CompareState(
        runs=_runs(get("runs")),
        sweep=_optional_id(get("sweep"), "sweep"),
        keys=_keys(keys),
        x=_x_axis(get("x") or "step"),
        smooth=_smooth(get("smooth")),
        log=str(get("log", "")).lower() in ("1", "true", "on", "yes"),
        group=_name(get("group"), "group"),
        best=_name(get("best"), "best"),
        mode=_mode(get("mode")),
        sx=_name(get("sx"), "sx"),
        sy=_name(get("sy"), "sy"),
        hide=_hidden(hide),
    )


def _runs(raw: Any) -> tuple[int, ...]:
    if raw in (None, ""):
        return ()
    items = raw if isinstance(raw, list) else str(raw).split(",")
    parsed = [parse_id(item) for item in items if str(item).strip()]
    if None in parsed:
        raise StateError("runs must be run ids separated by commas, e.g. runs=3,4,9")
    ids = tuple(dict.fromkeys(i for i in parsed if i is not None))
    if len(ids) > MAX_RUNS:
        raise StateError(f"compare at most {MAX_RUNS} runs at once, got {len(ids)}")
    return ids


def _optional_id(raw: Any, name: str) -> int | None:
    if raw in (None, ""):
        return None
    value = parse_id(raw)
    if value is None:
        raise StateError(f"{name} must be an id")
    return value


def _keys(raw: list[Any]) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(str(key) for key in raw if str(key)))
    if len(keys) > MAX_KEYS:
        raise StateError(f"show at most {MAX_KEYS} metric keys at once")
    for key in keys:
        if not _NAME.match(key):
            raise StateError(f"metric key {key[:40]!r} must be 1-200 printable characters")
    return keys


def _hidden(raw: list[Any]) -> tuple[str, ...]:
    entries = tuple(dict.fromkeys(str(entry) for entry in raw if str(entry)))
    if len(entries) > MAX_RUNS:
        raise StateError(f"hide at most {MAX_RUNS} legend entries")
    for entry in entries:
        if not _LEGEND_ENTRY.match(entry):
            raise StateError(f"hide={entry[:40]!r} must be a legend entry: run-<id> or group-<value>")
    return entries


def _x_axis(raw: str) -> str:
    raw = str(raw)
    if raw in _TIME_AXES:
        return raw
    if raw.startswith("metric:") and _NAME.match(raw.removeprefix("metric:")):
        return raw
    raise StateError("x must be step, wall, rel or metric:<key>")


def _smooth(raw: Any) -> float:
    if raw in (None, ""):
        return 0.0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise StateError("smooth must be a number from 0 to 0.99") from None
    if not 0.0 <= value <= 0.99:
        raise StateError("smooth must be a number from 0 to 0.99")
    return round(value, 3)


def _mode(raw: Any) -> str:
    if raw in (None, ""):
        return "min"
    if raw not in ("min", "max"):
        raise StateError("mode must be min or max")
    return str(raw)


def _name(raw: Any, what: str) -> str:
    if raw in (None, ""):
        return ""
    if not _NAME.match(str(raw)):
        raise StateError(f"{what} must be 1-200 printable characters")
    return str(raw)

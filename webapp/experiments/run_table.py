"""The project's run table: filters, sort and one page of rows, in a fixed number of queries.

Filters come from the page's query string (`state`, `tag`, `owner`, `q`, `param` such as
`lr=0.01`, `metric` such as `loss<0.5` on a summary's last value) and never raise: a
malformed one is reported in `errors` and left out. Pages hold `PAGE_SIZE` runs; the table
fetches one extra row to know whether a next page exists instead of counting every run.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, F, FilteredRelation, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.http import QueryDict

from webapp.experiments.models import MetricSummary, Run, RunState
from webapp.experiments.results import is_system
from webapp.experiments.run_columns import Column, cell, choices, shown_columns
from webapp.ids import parse_int
from webapp.projects.models import Project

PAGE_SIZE = 25
MAX_PAGE = 100_000
MAX_METRIC_COLUMNS = 8
COLUMNS = {
    "number": "number",
    "name": "name",
    "state": "state",
    "owner": "owner__username",
    "created": "created_at",
    "started": "started_at",
    "finished": "finished_at",
    "priority": "priority",
}
_NULLABLE = {"started", "finished"}
METRIC_SORT_PREFIX = "metric:"
_CONDITION = re.compile(r"^\s*(?P<key>[^<>=!]+?)\s*(?P<op><=|>=|!=|==|=|<|>)\s*(?P<value>.*?)\s*$")
_LOOKUPS = {"=": "exact", "==": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class RunFilters:
    state: str = ""
    tag: str = ""
    owner: str = ""
    q: str = ""
    param: str = ""
    metric: str = ""
    sort: str = "-number"
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: QueryDict) -> RunFilters:
        errors: dict[str, str] = {}
        state = query.get("state", "").strip()
        if state and state not in RunState.values:
            errors["state"] = f"Unknown state {state!r}."
            state = ""
        sort = query.get("sort", "").strip() or "-number"
        if _sort_expression(sort) is None:
            errors["sort"] = f"Cannot sort by {sort!r}."
            sort = "-number"
        page = min(max(parse_int(query.get("page", "1")) or 1, 1), MAX_PAGE)
        filters = cls(
            state=state,
            tag=query.get("tag", "").strip()[:64],
            owner=query.get("owner", "").strip()[:150],
            q=query.get("q", "").strip()[:200],
            param=query.get("param", "").strip()[:300],
            metric=query.get("metric", "").strip()[:300],
            sort=sort,
            page=page,
            errors=errors,
        )
        for name in ("param", "metric"):
            if getattr(filters, name):
                try:
                    filters.condition(name)
                except ValueError as exc:
                    errors[name] = str(exc)
        return filters

    def condition(self, name: str) -> Condition | None:
        """The parsed `param` or `metric` filter; ValueError says what is wrong with it."""
        text = getattr(self, name)
        if not text or name in self.errors:
            return None
        match = _CONDITION.match(text)
        if not match or not match["value"]:
            raise ValueError("Write it as name=value, name<value or name>=value.")
        op = match["op"]
        if name == "metric":
            try:
                number = float(match["value"])
            except ValueError:
                raise ValueError(f"{match['value']!r} is not a number.") from None
            if not math.isfinite(number):
                raise ValueError("Compare with a finite number.")
            return Condition(match["key"], op, number)
        return Condition(match["key"], op, _param_value(match["value"]))

    @property
    def active(self) -> bool:
        return any((self.state, self.tag, self.owner, self.q, self.param, self.metric))

    @property
    def sort_metric(self) -> str | None:
        key = self.sort.lstrip("-")
        return key[len(METRIC_SORT_PREFIX):] if key.startswith(METRIC_SORT_PREFIX) else None


@dataclass(frozen=True)
class RunRow:
    run: Run
    tags: list[str]
    metrics: list[float | None]
    cells: list[tuple[Column, Any]] = field(default_factory=list)  # (column, value) per `RunTablePage.columns`


@dataclass(frozen=True)
class RunTablePage:
    rows: list[RunRow]
    metric_keys: list[str]
    page: int
    has_next: bool
    columns: list[Column] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)  # what the column picker offers
    picked: bool = False  # the columns are the user's saved pick, not the defaults

    @property
    def shown_ids(self) -> set[str]:
        return {col.id for col in self.columns}

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def first_index(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.rows) - 1


def run_table_page(project: Project, filters: RunFilters, saved_columns: list[str] | None = None) -> RunTablePage:
    """One page of the project's runs: three queries whatever the page size or the number of runs.

    `saved_columns` is the user's pick (`run_columns`); None shows the defaults.
    """
    runs = _filtered(project, filters)
    runs = runs.select_related("owner", "worker").prefetch_related("tags", "summaries")
    offset = (filters.page - 1) * PAGE_SIZE
    fetched = list(runs[offset : offset + PAGE_SIZE + 1])
    has_next = len(fetched) > PAGE_SIZE
    fetched = fetched[:PAGE_SIZE]
    keys = _metric_columns(fetched, filters)
    asked = [key for key in (filters.sort_metric, _metric_key(filters)) if key]
    columns = shown_columns(fetched, saved_columns, asked)
    rows = []
    for run in fetched:
        summaries = {summary.key: summary for summary in run.summaries.all()}
        last = {key: summary.last for key, summary in summaries.items()}
        rows.append(
            RunRow(
                run=run,
                tags=sorted(tag.name for tag in run.tags.all()),
                metrics=[math.nan if key in last and last[key] is None else last.get(key) for key in keys],  # NULL: NaN
                cells=[(col, cell(run, col, summaries)) for col in columns],
            )
        )
    return RunTablePage(rows=rows, metric_keys=keys, page=filters.page, has_next=has_next, columns=columns,
                        choices=choices(fetched, columns), picked=saved_columns is not None)


def _filtered(project: Project, filters: RunFilters) -> QuerySet[Run]:
    runs = Run.objects.filter(project=project)
    if filters.state:
        runs = runs.filter(state=filters.state)
    if filters.tag:
        runs = runs.filter(tags__name=filters.tag)  # (run, name) is unique: no duplicate rows
    if filters.owner:
        runs = runs.filter(owner__username=filters.owner)
    if filters.q:
        runs = runs.filter(name__icontains=filters.q)
    param = filters.condition("param")
    if param is not None:
        runs = runs.alias(_param=KeyTransform(param.key, "params"))
        condition = Q(_param__exact=param.value) if param.op == "!=" else Q(**{f"_param__{_LOOKUPS[param.op]}": param.value})
        runs = runs.exclude(condition) if param.op == "!=" else runs.filter(condition)
    metric = filters.condition("metric")
    if metric is not None:
        summaries = MetricSummary.objects.filter(run=OuterRef("pk"), key=metric.key)
        if metric.op == "!=":
            summaries = summaries.exclude(last=metric.value)
        else:
            summaries = summaries.filter(**{f"last__{_LOOKUPS[metric.op]}": metric.value})
        runs = runs.filter(Exists(summaries))
    order = _sort_expression(filters.sort)
    if filters.sort_metric is not None:
        runs = runs.alias(_sort=FilteredRelation("summaries", condition=Q(summaries__key=filters.sort_metric)))
    return runs.order_by(order, "-number") if filters.sort.lstrip("-") != "number" else runs.order_by(order)


def _sort_expression(sort: str) -> Any:
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    if name.startswith(METRIC_SORT_PREFIX):
        if not name[len(METRIC_SORT_PREFIX):]:
            return None
        expression = F("_sort__last")
    elif name in _NULLABLE:
        expression = F(COLUMNS[name])
    elif name in COLUMNS:
        # NOTE: plain ordering on NOT NULL columns, so (project, number) is served by its index.
        return f"-{COLUMNS[name]}" if descending else COLUMNS[name]
    else:
        return None
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)


def _metric_columns(runs: list[Run], filters: RunFilters) -> list[str]:
    """The metric columns: the sorted and filtered metrics first, then the page's other keys (system metrics only when sorted or filtered on)."""
    first = [key for key in (filters.sort_metric, _metric_key(filters)) if key]
    seen = sorted({summary.key for run in runs for summary in run.summaries.all() if not is_system(summary.key)} - set(first))
    return list(dict.fromkeys(first + seen))[:MAX_METRIC_COLUMNS]


def _metric_key(filters: RunFilters) -> str | None:
    condition = filters.condition("metric")
    return condition.key if condition else None


def _param_value(text: str) -> Any:
    """`0.01` and `true` compare as JSON numbers and booleans; anything else as a string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.strip("'\"")
    return value if isinstance(value, bool | int | float | str) else text



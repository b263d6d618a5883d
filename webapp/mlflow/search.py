"""MLflow's run search grammar as a Django Q on Run, and its order_by as order_by() arguments.

    filter   := clause (AND clause)*
    clause   := IDENT OP value | IDENT [NOT] IN "(" string ("," string)* ")"
    IDENT    := (metrics|params|tags|attributes).KEY (singular forms and attr./run. too;
                KEY bare, in `backticks` or "double quotes")
    OP       := = | != | < | > | <= | >= | LIKE | ILIKE

metrics compare their latest value (the value at the highest step); params and tags compare text;
attributes: run_id, run_name, status, user_id, start_time, end_time (milliseconds). A run without the
compared metric, param or tag never matches (also for !=), as in MLflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, Exists, F, FloatField, OrderBy, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Concat, Upper
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Lookup,
)

from webapp.experiments.models import MetricSummary, Run, RunTag
from webapp.mlflow.entities import STATUS_TO_STATE, from_millis
from webapp.mlflow.errors import MlflowError

MAX_FILTER_CHARS = 10_000
_DATASET_FIELDS = ("name", "digest", "context")
_PREFIXES = {"metrics": "metric", "metric": "metric", "params": "param", "param": "param", "parameters": "param",
             "parameter": "param", "tags": "tag", "tag": "tag", "attributes": "attr", "attribute": "attr",
             "attr": "attr", "run": "attr", "datasets": "dataset", "dataset": "dataset"}
_TOKEN = re.compile(r"""\s*(?:
    (?P<ident>[A-Za-z_]+\.(?:`[^`]+`|"[^"]+"|[\w.\-/:]+)|[A-Za-z_]\w*)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)
)""", re.VERBOSE)


class Like(Lookup):
    """SQL LIKE with the pattern as given (% and _ are the client's wildcards)."""

    lookup_name = "mlflow_like"

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        escape = " ESCAPE '\\'" if connection.vendor == "sqlite" else ""
        return f"{lhs} LIKE {rhs}{escape}", (*lhs_params, *rhs_params)


class NotExact(Lookup):
    lookup_name = "mlflow_ne"

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} <> {rhs}", (*lhs_params, *rhs_params)


_COMPARE = {"=": Exact, "!=": NotExact, "<": LessThan, ">": GreaterThan, "<=": LessThanOrEqual, ">=": GreaterThanOrEqual}


@dataclass(frozen=True)
class Field:
    kind: str  # metric, param, tag, attr
    key: str


def parse_field(text: str) -> Field:
    prefix, dot, key = text.partition(".")
    if not dot:  # a bare attribute name (order_by allows it)
        return Field("attr", _attribute(text))
    kind = _PREFIXES.get(prefix.lower())
    if kind is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid entity type '{prefix}'. Valid values are "
                          "['metric', 'parameter', 'tag', 'attribute', 'dataset']")
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`\"":
        key = key[1:-1]
    if kind == "dataset" and key not in _DATASET_FIELDS:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid dataset key '{key}'. Valid keys are "
                          f"{', '.join(_DATASET_FIELDS)}")
    return Field(kind, _attribute(key) if kind == "attr" else key)


def _attribute(name: str) -> str:
    name = {"run_uuid": "run_id", "created": "start_time", "Created": "start_time", "status": "status"}.get(name, name)
    if name not in ("run_id", "run_name", "status", "user_id", "start_time", "end_time", "artifact_uri"):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid attribute key '{name}' specified. Valid keys are "
                          "run_id, run_name, status, user_id, start_time, end_time, artifact_uri")
    return name


def parse_filter(text: str, scope: QuerySet[Run] | None = None) -> Q:
    """The filter as a Q for Run; MlflowError INVALID_PARAMETER_VALUE naming the problem.

    `scope` (the searched experiments' runs) is where `datasets.` clauses look for matching inputs.
    """
    text = (text or "").strip()
    if not text:
        return Q()
    if len(text) > MAX_FILTER_CHARS or "\0" in text:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"A filter has at most {MAX_FILTER_CHARS} characters")
    tokens = _tokens(text)
    condition, position = Q(), 0
    while True:
        clause, position = _clause(tokens, position, text, scope)
        condition &= clause
        if position == len(tokens):
            return condition
        kind, word = tokens[position]
        if kind != "ident" or word.upper() != "AND":
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': expected AND, found {word!r}"
                              " (MLflow's search joins clauses with AND only)")
        position += 1


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': cannot read from position {at}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        at = match.end()
    return tokens


def _clause(tokens: list[tuple[str, str]], at: int, text: str, scope: QuerySet[Run] | None) -> tuple[Q, int]:
    def bad(why: str) -> MlflowError:
        return MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': {why}")

    if at + 1 >= len(tokens):
        raise bad("a clause is 'field operator value'")
    kind, word = tokens[at]
    if kind != "ident":
        raise bad(f"expected a field such as metrics.loss, found {word!r}")
    field = parse_field(word)
    op_kind, op = tokens[at + 1]
    at += 2
    if op_kind == "ident" and op.upper() == "NOT" and at < len(tokens) and tokens[at][1].upper() == "IN":
        op, at = "NOT IN", at + 1
    elif op_kind == "ident" and op.upper() in ("IN", "LIKE", "ILIKE"):
        op = op.upper()
    elif op_kind != "op":
        raise bad(f"expected an operator after {word}, found {op!r}")
    if op in ("IN", "NOT IN"):
        if at >= len(tokens) or tokens[at][0] != "lparen":
            raise bad(f"{op} takes a parenthesised list of strings")
        values, at = [], at + 1
        while True:
            if at >= len(tokens) or tokens[at][0] != "string":
                raise bad(f"{op} takes a parenthesised list of quoted strings")
            values.append(_unquote(tokens[at][1]))
            at += 1
            if at < len(tokens) and tokens[at][0] == "comma":
                at += 1
                continue
            if at < len(tokens) and tokens[at][0] == "rparen":
                at += 1
                break
            raise bad(f"{op}'s list is not closed")
        return _condition(field, op, values, bad, scope), at
    if at >= len(tokens):
        raise bad(f"{word} {op} needs a value")
    value_kind, value = tokens[at]
    if value_kind == "string":
        parsed: Any = _unquote(value)
    elif value_kind == "number":
        parsed = float(value)
    else:
        raise bad(f"expected a value after {word} {op}, found {value!r}")
    return _condition(field, op, parsed, bad, scope), at + 1


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _condition(field: Field, op: str, value: Any, bad: Any, scope: QuerySet[Run] | None) -> Q:
    if field.kind == "dataset":
        return _dataset_condition(field.key, op, value, bad, scope)
    if field.kind == "metric":
        if op not in _COMPARE or not isinstance(value, float):
            raise bad(f"metrics compare numbers with =, !=, <, >, <=, >=; got {op} {value!r}")
        return Q(Exists(MetricSummary.objects.filter(_COMPARE[op](F("last"), value), run=OuterRef("pk"), key=field.key)))
    if field.kind in ("param", "tag"):
        _require_text(field, op, value, bad)
        if field.kind == "param":
            text = Cast(KeyTextTransform(field.key, "params"), CharField())
            return Q(params__has_key=field.key) & _text_match(text, op, value)
        if field.key == "mlflow.runName":
            return _text_match(F("name"), op, value)
        return Q(Exists(RunTag.objects.filter(_text_match(F("value"), op, value), run=OuterRef("pk"), name=field.key)))
    return _attribute_condition(field.key, op, value, bad)


def _require_text(field: Field, op: str, value: Any, bad: Any) -> None:
    if op in ("<", ">", "<=", ">="):
        raise bad(f"{field.kind}s compare text with =, !=, LIKE, ILIKE, IN, NOT IN; got {op}")
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise bad(f"{field.kind}s compare with quoted strings, e.g. {field.kind}s.{field.key} = 'value'")


def _text_match(lhs: Any, op: str, value: Any) -> Q:
    if op == "LIKE":
        return Q(Like(lhs, value))
    if op == "ILIKE":
        return Q(Like(Upper(lhs), value.upper()))
    if op == "IN":
        return _or([Q(Exact(lhs, v)) for v in value])
    if op == "NOT IN":
        return ~_or([Q(Exact(lhs, v)) for v in value])
    return Q(_COMPARE[op](lhs, value))


def _or(conditions: list[Q]) -> Q:
    result = Q(pk__in=[])
    for condition in conditions:
        result |= condition
    return result


def _attribute_condition(name: str, op: str, value: Any, bad: Any) -> Q:
    if name in ("start_time", "end_time"):
        if op not in _COMPARE or not isinstance(value, float):
            raise bad(f"attributes.{name} compares milliseconds with =, !=, <, >, <=, >=")
        column = "started_at" if name == "start_time" else "finished_at"
        moment = from_millis(int(value), f"attributes.{name}")
        return Q(**{f"{column}__isnull": False}) & Q(_COMPARE[op](F(column), moment))
    _require_text(Field("attribute", name), op, value, bad)
    if name == "run_id":
        if op in ("LIKE", "ILIKE"):
            raise bad("attributes.run_id compares with =, !=, IN, NOT IN")
        ids = [int(v) for v in (value if isinstance(value, list) else [value]) if v.isascii() and v.isdigit() and len(v) < 19]
        chosen = Q(id__in=ids)
        return ~chosen if op in ("!=", "NOT IN") else chosen
    if name == "status":
        if op in ("LIKE", "ILIKE"):
            raise bad("attributes.status compares with =, !=, IN, NOT IN")
        wanted = [STATUS_TO_STATE.get(v.upper()) for v in (value if isinstance(value, list) else [value])]
        states = [str(s) for s in wanted if s is not None]
        if any(v.upper() == "SCHEDULED" for v in (value if isinstance(value, list) else [value])):
            states += ["queued", "scheduled", "lost", "paused"]
        chosen = Q(state__in=states)
        return ~chosen if op in ("!=", "NOT IN") else chosen
    if name == "artifact_uri":  # entities.artifact_uri, spelled in SQL
        uri = Concat(Value("mlflow-artifacts:/"), Cast(F("project_id"), CharField()), Value("/"),
                     Cast(F("id"), CharField()), Value("/artifacts"), output_field=CharField())
        return _text_match(uri, op, value)
    return _text_match(F("name") if name == "run_name" else F("owner__username"), op, value)


def _dataset_condition(key: str, op: str, value: Any, bad: Any, scope: QuerySet[Run] | None) -> Q:
    """Runs with a logged dataset input whose name, digest or context (its mlflow.data.context tag) matches."""
    if op in ("<", ">", "<=", ">="):
        raise bad(f"datasets.{key} compares text with =, !=, LIKE, ILIKE, IN, NOT IN; got {op}")
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise bad(f"datasets.{key} compares with quoted strings")
    matches = _text_predicate(op, value)
    runs = (scope if scope is not None else Run.objects.all()).filter(spec__external__has_key="inputs")
    chosen = []
    for run_id, inputs in runs.values_list("id", "spec__external__inputs"):
        for item in inputs if isinstance(inputs, list) else []:
            dataset = item.get("dataset") if isinstance(item, dict) else None
            if not isinstance(dataset, dict):
                continue
            tags = {t.get("key"): t.get("value") for t in item.get("tags") or [] if isinstance(t, dict)}
            got = tags.get("mlflow.data.context") if key == "context" else dataset.get(key)
            if isinstance(got, str) and matches(got):
                chosen.append(run_id)
                break
    return Q(id__in=chosen)


def _text_predicate(op: str, value: Any) -> Any:
    if op in ("LIKE", "ILIKE"):
        pattern = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value),
                             re.DOTALL | (re.IGNORECASE if op == "ILIKE" else 0))
        return lambda got: pattern.fullmatch(got) is not None
    if op in ("IN", "NOT IN"):
        return lambda got: (got in value) == (op == "IN")
    return lambda got: (got == value) == (op == "=")


def parse_order_by(clauses: list[str]) -> list[Any]:
    """order_by() arguments for MLflow's `order_by` ("metrics.loss DESC", "attributes.start_time ASC", ...)."""
    order: list[Any] = []
    for clause in clauses[:20]:
        text = clause.strip()
        descending = False
        match = re.fullmatch(r"(.+?)(?:\s+(ASC|DESC))?", text, re.IGNORECASE)
        if not text or match is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{clause}'")
        descending = (match.group(2) or "").upper() == "DESC"
        field = parse_field(match.group(1).strip())
        if field.kind == "dataset" or (field.key == "artifact_uri" and field.kind == "attr"):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{clause}': runs are ordered by "
                              "metrics, params, tags or attributes other than artifact_uri")
        expression: Any
        if field.kind == "metric":
            expression = Subquery(MetricSummary.objects.filter(run=OuterRef("pk"), key=field.key).values("last")[:1],
                                  output_field=FloatField())
        elif field.kind == "param":
            expression = Cast(KeyTextTransform(field.key, "params"), CharField())
        elif field.kind == "tag":
            expression = (F("name") if field.key == "mlflow.runName" else Subquery(
                RunTag.objects.filter(run=OuterRef("pk"), name=field.key).values("value")[:1], output_field=CharField()))
        else:
            expression = F({"run_id": "id", "run_name": "name", "status": "state", "user_id": "owner__username",
                            "start_time": "started_at", "end_time": "finished_at"}[field.key])
        order.append(OrderBy(expression, descending=descending, nulls_last=True))
    return [*order, OrderBy(F("started_at"), descending=True, nulls_last=True), OrderBy(F("id"), descending=True)]

"""The run query language: `state IN (running, queued) AND params.lr < 0.01 OR tags = baseline`.

Grammar (keywords are case-insensitive; AND binds tighter than OR):

    expr       := term (OR term)*
    term       := factor (AND factor)*
    factor     := NOT factor | "(" expr ")" | comparison
    comparison := FIELD OP value | FIELD [NOT] IN "(" value ("," value)* ")"
    OP         := = | == | != | < | <= | > | >= | ~ (contains, for text)
    value      := a bare word (numbers, true/false and text) or a 'quoted' / "quoted" string

Fields: id, number, name, state, kind, owner, gpus, priority, attempt, sweep, created_at,
started_at, finished_at, tags, params.<key> and metrics.<key>[.last|.min|.max|.count|.step]
(a metric compares its summary: the last value unless a suffix says otherwise).
`a != v` and `NOT IN` are the negations of `=` and `IN`, so they also match runs without `a`;
`<`, `>` ... only match runs that have a value of the compared type.

`parse_query` returns a Q for Run; `parse_sort` returns order_by() arguments. Both raise
QueryError naming the position of the problem. Works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    F,
    FloatField,
    Func,
    OrderBy,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    LessThan,
    LessThanOrEqual,
)

from webapp.experiments.models import MetricSummary, RunState, RunTag

MAX_QUERY_CHARS = 2000
MAX_DEPTH = 32
MAX_IN_VALUES = 500


class QueryError(ValueError):
    def __init__(self, message: str, position: int):
        self.position = position
        super().__init__(f"{message} at position {position}")


@dataclass(frozen=True)
class Token:
    kind: str  # word, string, op, lparen, rparen, comma, end
    text: str
    position: int


_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<op>==|!=|<=|>=|=|<|>|~)
      | (?P<lparen>\()
      | (?P<rparen>\))
      | (?P<comma>,)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<word>[A-Za-z0-9_.\-+/:@*]+)""",
    re.VERBOSE,
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_KEYWORDS = {"and", "or", "not", "in"}


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is longer than {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS)
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            what = "an unterminated string" if text[position] in "'\"" else f"unexpected character {text[position]!r}"
            raise QueryError(what, position)
        kind = match.lastgroup or ""
        if kind != "space":
            raw = match.group()
            if kind == "string":
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            tokens.append(Token(kind, raw, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# Values and fields ----------------------------------------------------------------------------------

def _literal(token: Token) -> Any:
    """A bare word is a number, true/false or text; a quoted string is always text."""
    if token.kind == "string":
        return token.text
    lowered = token.text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _NUMBER.match(token.text):
        number = float(token.text)
        return int(token.text) if re.fullmatch(r"[+-]?\d+", token.text) and abs(number) < 2**63 else number
    return token.text


class JSONKind(Func):
    """The JSON type of `field[key]`: number, string, true, false, null, object, array; NULL when absent."""

    output_field = CharField()

    def __init__(self, field: str, key: str):
        super().__init__(F(field))
        self.key = key

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        column, params = compiler.compile(self.source_expressions[0])
        path = "$." + json.dumps(self.key)
        sql = (
            f"CASE json_type({column}, %s) WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            f"WHEN 'text' THEN 'string' ELSE json_type({column}, %s) END"
        )
        return sql, (*params, path, *params, path)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"CASE jsonb_typeof({column} -> %s) WHEN 'boolean' THEN ({column} ->> %s) ELSE jsonb_typeof({column} -> %s) END"
        return sql, (*params, self.key, *params, self.key, *params, self.key)

    def as_sql(self, compiler: Any, connection: Any, *args: Any, **extra: Any) -> tuple[str, tuple]:
        raise NotImplementedError(f"params queries need SQLite or PostgreSQL, not {connection.vendor}")


def _param_number(key: str) -> Case:
    # NOTE: the CASE guards the cast, so a text value never reaches CAST(... AS double) on PostgreSQL.
    return Case(When(Q(Exact(JSONKind("params", key), "number")), then=Cast(KeyTextTransform(key, "params"), FloatField())))


_COMPARE = {"=": Exact, "<": LessThan, "<=": LessThanOrEqual, ">": GreaterThan, ">=": GreaterThanOrEqual, "~": IContains}
_DJANGO_LOOKUP = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "~": "icontains"}
_COLUMNS: dict[str, tuple[str, str]] = {  # query name -> (model path, type)
    "id": ("id", "int"), "number": ("number", "int"), "name": ("name", "text"), "state": ("state", "state"),
    "kind": ("kind", "text"), "owner": ("owner__username", "text"), "gpus": ("gpus", "int"),
    "priority": ("priority", "int"), "attempt": ("attempt", "int"), "sweep": ("sweep_id", "int"),
    "created_at": ("created_at", "time"), "started_at": ("started_at", "time"),
    "finished_at": ("finished_at", "time"), "scheduled_at": ("scheduled_at", "time"),
}
_SUMMARY_ATTRS = {"last": "last", "min": "min", "max": "max", "count": "count", "step": "last_step"}


def _metric_field(name: str, position: int) -> tuple[str, str]:
    rest = name[len("metrics."):]
    key, _, suffix = rest.rpartition(".")
    if key and suffix in _SUMMARY_ATTRS:
        return key, _SUMMARY_ATTRS[suffix]
    if not rest:
        raise QueryError("name the metric, e.g. metrics.loss", position)
    return rest, "last"


def _condition(name: str, op: str, value: Any, at: int, position: int) -> Q:
    """The positive condition `name op value` (op never != here); `at` is the field's position, `position` the value's."""
    if name.startswith("params."):
        key = name[len("params."):]
        if not key:
            raise QueryError("name the param, e.g. params.lr", at)
        return _definite(_param_condition(key, op, value, position))
    if name.startswith("metrics."):
        key, attr = _metric_field(name, at)
        if isinstance(value, bool) or not isinstance(value, int | float) or op == "~":
            raise QueryError(f"{name} compares with numbers", position)
        return Q(Exists(MetricSummary.objects.filter(run_id=OuterRef("pk"), key=key, **{f"{attr}__{_DJANGO_LOOKUP[op]}": value})))
    if name == "tags":
        if op not in ("=", "~"):
            raise QueryError(f"tags compare with =, !=, ~ or IN, not {op}", at)
        return Q(Exists(RunTag.objects.filter(run_id=OuterRef("pk"), **{f"name__{_DJANGO_LOOKUP[op]}": str(value)})))
    column = _COLUMNS.get(name)
    if column is None:
        raise QueryError(
            f"unknown field {name!r}; use one of {', '.join(sorted(_COLUMNS))}, tags, params.<key>, metrics.<key>", at
        )
    path, kind_name = column
    return Q(**{f"{path}__{_DJANGO_LOOKUP[op]}": _column_value(name, kind_name, op, value, position)})


def _column_value(name: str, kind: str, op: str, value: Any, position: int) -> Any:
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float) or op == "~":
            raise QueryError(f"{name} compares with numbers", position)
        if abs(value) >= 2**63:
            raise QueryError(f"{value} is out of range for {name}", position)
        return value
    if kind == "time":
        if op == "~":
            raise QueryError(f"{name} compares with dates like 2025-01-31 or 2025-01-31T12:00", position)
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise QueryError(f"{name} compares with dates like 2025-01-31 or 2025-01-31T12:00", position) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if kind == "state" and op in ("=",) and str(value) not in RunState.values:
        raise QueryError(f"{value!r} is not a state; states are {', '.join(RunState.values)}", position)
    return str(value)


def _param_condition(key: str, op: str, value: Any, position: int) -> Q:
    kind = JSONKind("params", key)
    if isinstance(value, bool):
        if op != "=":
            raise QueryError(f"true/false only compare with = or !=, not {op}", position)
        return Q(Exact(kind, "true" if value else "false"))
    if isinstance(value, int | float):
        if op == "~":
            raise QueryError("~ (contains) needs text", position)
        return Q(_COMPARE[op](_param_number(key), float(value)))
    return Q(Exact(kind, "string")) & Q(_COMPARE[op](KeyTextTransform(key, "params"), value))


def _definite(condition: Q) -> Q:
    # NOTE: a missing key or another type makes a JSON comparison NULL, and NOT NULL matches nothing;
    # as a CASE it is plainly true or false, so NOT and != also match runs without the value.
    return Q(Exact(Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()), True))


# Parser ---------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens, self.index, self.depth = tokens, 0, 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self.current
        if token.kind == "word" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def _expect(self, kind: str, what: str) -> Token:
        token = self.current
        if token.kind != kind:
            raise QueryError(f"expected {what}, found {_describe(token)}", token.position)
        return self._take()

    def parse(self) -> Q:
        q = self.expr()
        if self.current.kind != "end":
            raise QueryError(f"expected AND, OR or the end, found {_describe(self.current)}", self.current.position)
        return q

    def expr(self) -> Q:
        q = self.term()
        while self._keyword("or"):
            q = q | self.term()
        return q

    def term(self) -> Q:
        q = self.factor()
        while self._keyword("and"):
            q = q & self.factor()
        return q

    def factor(self) -> Q:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError("the query nests too deeply", self.current.position)
        try:
            if self._keyword("not"):
                return ~self.factor()
            if self.current.kind == "lparen":
                self._take()
                q = self.expr()
                self._expect("rparen", "')'")
                return q
            return self.comparison()
        finally:
            self.depth -= 1

    def comparison(self) -> Q:
        field = self.current
        if field.kind != "word" or field.text.lower() in _KEYWORDS:
            raise QueryError(f"expected a field name, found {_describe(field)}", field.position)
        self._take()
        name = field.text
        negated = self._keyword("not")
        if self._keyword("in"):
            self._expect("lparen", "'(' after IN")
            values = [self.value()]
            while self.current.kind == "comma":
                self._take()
                values.append(self.value())
                if len(values) > MAX_IN_VALUES:
                    raise QueryError(f"IN takes at most {MAX_IN_VALUES} values", self.current.position)
            self._expect("rparen", "')' or ','")
            positive = Q()
            for value, position in values:
                positive |= _condition(name, "=", value, field.position, position)
            return ~positive if negated else positive
        if negated:
            raise QueryError(f"expected IN after NOT, found {_describe(self.current)}", self.current.position)
        op = self._expect("op", f"an operator (=, !=, <, <=, >, >=, ~, IN) after {name!r}").text
        value, position = self.value()
        if op == "!=":
            return ~_condition(name, "=", value, field.position, position)
        return _condition(name, "=" if op == "==" else op, value, field.position, position)

    def value(self) -> tuple[Any, int]:
        token = self.current
        if token.kind not in ("word", "string") or (token.kind == "word" and token.text.lower() in _KEYWORDS):
            raise QueryError(f"expected a value, found {_describe(token)}", token.position)
        self._take()
        return _literal(token), token.position


def _describe(token: Token) -> str:
    return "the end of the query" if token.kind == "end" else repr(token.text)


def parse_query(text: str) -> Q:
    """A Q over Run for a query; an empty query matches everything."""
    if not text.strip():
        return Q()
    return _Parser(tokenize(text)).parse()


# Sorting --------------------------------------------------------------------------------------------

def parse_sort(text: str) -> list[Any]:
    """order_by() arguments for `-metrics.loss,name`; runs without the value sort last either way."""
    order: list[Any] = []
    position = 0
    for part in text.split(","):
        name = part.strip()
        start = position + len(part) - len(part.lstrip())
        position += len(part) + 1
        if not name:
            continue
        descending = name.startswith("-")
        name = name.lstrip("-+")
        order.extend(_sort_terms(name, descending, start))
    if len(order) > 20:
        raise QueryError("sort by at most a few fields", 0)
    return [*order, "-id"]


def _sort_terms(name: str, descending: bool, position: int) -> list[OrderBy]:
    def ordered(expression: Any) -> OrderBy:
        return expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)

    if name.startswith("params.") and len(name) > len("params."):
        key = name[len("params."):]
        return [ordered(_param_number(key)), ordered(KeyTextTransform(key, "params"))]
    if name.startswith("metrics.") and len(name) > len("metrics."):
        key, attr = _metric_field(name, position)
        return [ordered(Subquery(MetricSummary.objects.filter(run_id=OuterRef("pk"), key=key).values(attr)[:1]))]
    column = _COLUMNS.get(name)
    if column is None:
        raise QueryError(f"cannot sort by {name!r}", position)
    return [ordered(F(column[0]))]

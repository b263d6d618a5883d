"""Schemathesis fuzzes every operation from the API's own OpenAPI schema: no input gets a 5xx.

Three passes over every operation: requests that fit the schema, requests that break it, and
requests that fit it but for one parameter (path, query or body field) set to a hostile value:
Unicode digits ('²' passes `str.isdigit()`, fails `int()`), integers past the bigint, deep nesting,
NUL and newlines. Each hostile value goes into every parameter, so the class of bug cannot hide.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from webapp.experiments.results import MetricPoint, logs_append, metrics_log

EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


HOSTILE = [
    "²", "\u0663", "\uff11\uff12", "1_000", "\u0663\u0664",  # digits str.isdigit() or int() accept, not the database
    2**63, 2**70, -(2**70), str(2**63), "9" * 40, 1e308, -0.0,  # past the bigint, edge floats
    "[" * 3000 + "]" * 3000, _nested(300),  # deep nesting as YAML/JSON text and as JSON
    "a\nb", "a\x00b", "..\\..\\x", "a/../../b", " ", "%", "\ufeff1",  # newline, NUL, paths, blanks
]

pytestmark = pytest.mark.slow


@pytest.fixture
def wsgi_app():
    """Django's WSGI app, minus closing the test's database connection at the end of each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield WSGIHandler()
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _operations(world, wsgi_app) -> list:
    run = world.submit()
    metrics_log(run_id=run.id, points=[MetricPoint("loss", i, 1.0 / (i + 1), 0.0) for i in range(20)])
    logs_append(run_id=run.id, lines=[(0, "stdout", "hello")])
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    return operations


def _fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _call(case, headers: dict[str, str], failures: list[str]) -> int:
    """Call; a 5xx, or an error that is not JSON, is a failure."""
    response = case.call(headers=headers)
    status = response.status_code
    content_type = {name.lower(): value for name, value in response.headers.items()}.get("content-type") or [""]
    if status >= 500 or (status >= 400 and not content_type[0].startswith("application/json")):
        failures.append(f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]} -> {status}")
    return status


@pytest.mark.parametrize("mode", list(EXAMPLES_PER_OPERATION))
def test_no_operation_answers_5xx_to_generated_requests(world, wsgi_app, mode):
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    failures: list[str] = []
    statuses: list[int] = []
    for operation in _operations(world, wsgi_app):

        @_fuzz_settings(EXAMPLES_PER_OPERATION[mode])
        @given(case=operation.as_strategy(mode))
        def fuzz(case):
            statuses.append(_call(case, headers, failures))

        fuzz()
    assert not failures, "\n".join(failures[:20])
    if mode == GenerationMode.POSITIVE:
        assert sum(200 <= s < 300 for s in statuses) >= 20, "the fuzzer should get past validation often"


def test_a_hostile_value_in_any_one_parameter_gets_no_5xx(world, wsgi_app):
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    failures: list[str] = []
    tried = sum(_hostile_pass(operation, headers, failures) for operation in _operations(world, wsgi_app))
    assert not failures, "\n".join(failures[:20])
    assert tried > 500


def _hostile_pass(operation, headers: dict[str, str], failures: list[str]) -> int:
    """Every HOSTILE value in each of the operation's parameters in turn, the rest generated to fit."""
    tried = 0

    @_fuzz_settings(1)
    @given(data=st.data())
    def fuzz(data):
        nonlocal tried
        body = data.draw(operation.as_strategy()).body if list(operation.body) else None
        slots = [("path", p.name) for p in operation.path_parameters] + [("query", p.name) for p in operation.query]
        slots += [("body", name) for name in (body if isinstance(body, dict) else {})]
        for where, name in slots:
            for value in HOSTILE:
                case = data.draw(operation.as_strategy())
                _set(case, where, name, value)
                _call(case, headers, failures)
                tried += 1

    fuzz()
    return tried


def _set(case, where: str, name: str, value: Any) -> None:
    if where == "path":
        case.path_parameters[name] = value if isinstance(value, str) else json.dumps(value)
    elif where == "query":
        case.query = {**(case.query or {}), name: value if isinstance(value, str) else json.dumps(value)}
    elif case.media_type and case.media_type.startswith("multipart/"):
        case.body = {**case.body, name: value if isinstance(value, str) else json.dumps(value)}
    else:
        case.body = {**case.body, name: value}

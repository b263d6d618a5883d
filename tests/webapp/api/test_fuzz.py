"""Schemathesis fuzzes every operation from the API's own OpenAPI schema: no input gets a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings

from webapp.experiments.results import MetricPoint, logs_append, metrics_log

EXAMPLES_PER_OPERATION = 12

pytestmark = pytest.mark.slow


@pytest.fixture
def wsgi_app():
    """Django's WSGI app, minus closing the test's database connection at the end of each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield WSGIHandler()
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def test_no_operation_answers_5xx_to_generated_requests(world, wsgi_app):
    run = world.submit()
    metrics_log(run_id=run.id, points=[MetricPoint("loss", i, 1.0 / (i + 1), 0.0) for i in range(20)])
    logs_append(run_id=run.id, lines=[(0, "stdout", "hello")])
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", wsgi_app)
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    failures, statuses = [], []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case):
            response = case.call(headers=headers)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]} -> {response.status_code}")

        fuzz()
    assert not failures, "\n".join(failures[:20])
    assert sum(200 <= s < 300 for s in statuses) >= 20, "the fuzzer should get past validation often"

"""Through the real executor: a resumed attempt's points replace the lost attempt's past its checkpoint."""

from __future__ import annotations

import math

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Metric, MetricSummary, RunState, SupersededMetric
from worker.executor import execute
from worker.limits import JobLimits

# Attempt 1 logs 0..59 (loss = step), checkpoints at 29 and dies; attempt 2 resumes and logs 30..59
# (loss = 100 + step, and a gradient norm that goes NaN at 40 and infinite at 41).
SCRIPT = """
    import sys
    import numpy as np
    from engine import track
    start = track.resume()
    if start is None:
        for step in range(60):
            track.log({"loss": float(step)}, step=step)
            if step == 29:
                track.save_checkpoint({"w": np.zeros(1, dtype=np.float32)}, step=step)
        sys.exit(3)
    for step in range(start.step + 1, 60):
        grad = {40: float("nan"), 41: float("inf")}.get(step, 1.0)
        track.log({"loss": 100.0 + step, "grad_norm": grad}, step=step)
"""


def test_a_resumed_attempt_supersedes_the_lost_attempts_points_after_its_checkpoint(submit_code, claimed, settings, log_text):
    run = claimed(submit_code(SCRIPT))
    first = execute(run, attempt=1, worker_name="w-test", data_dir=settings.CONFIG.data_dir, limits=JobLimits(wall_seconds=60))
    assert first.exit_code == 3 and Metric.objects.filter(run=run).count() == 60
    assert run_transition(run_id=run.id, from_states=(RunState.RUNNING,), to_state=RunState.LOST, expected_attempt=1)
    assert run_transition(run_id=run.id, from_states=(RunState.LOST,), to_state=RunState.QUEUED)
    run = claimed(run)
    second = execute(run, attempt=2, worker_name="w-test", data_dir=settings.CONFIG.data_dir, limits=JobLimits(wall_seconds=60))
    assert (second.state, second.exit_code) == ("succeeded", 0), log_text(run)
    loss = list(Metric.objects.filter(run=run, key="loss").order_by("step").values_list("step", "value"))
    assert loss == [(s, float(s)) for s in range(30)] + [(s, 100.0 + s) for s in range(30, 60)]
    summary = MetricSummary.objects.get(run=run, key="loss")
    assert (summary.count, summary.last, summary.max) == (60, 159.0, 159.0)
    assert sorted(SupersededMetric.objects.filter(run=run, superseded_by=2).values_list("step", flat=True)) == list(range(30, 60))
    grad = dict(Metric.objects.filter(run=run, key="grad_norm").values_list("step", "value"))
    assert grad[40] is None and grad[41] == math.inf  # NaN is stored as NULL, infinity as itself
    grad_summary = MetricSummary.objects.get(run=run, key="grad_norm")
    assert (grad_summary.min, grad_summary.max) == (1.0, 1.0)  # over the finite values

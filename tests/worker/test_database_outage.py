"""A database outage costs a job nothing: its results wait, then are stored once each."""

from __future__ import annotations

import itertools
import time

import pytest
from django.db import OperationalError

from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import RunState
from worker import events, executor, main, tasks
from worker.executor import execute
from worker.limits import JobLimits
from worker.main import _hand_back_orphans
from worker.outage import DatabaseGate, ResultsUnsaved
from worker.tasks import execute_run
from worker.workdir import EVENTS_FILE

TICKING = """
    import time
    from engine import track
    for step in range(20):
        track.log({"loss": 1.0 / (step + 1)}, step=step)
        print("step", step, flush=True)
        time.sleep(0.1)
"""


class Outage:
    """Makes `function` raise OperationalError for `seconds` from the first call that `begins(kwargs)`."""

    def __init__(self, function, seconds: float, begins=lambda kwargs: True):
        self.function, self.seconds, self.begins = function, seconds, begins
        self.began: float | None = None
        self.refused = 0

    def __call__(self, **kwargs):
        if self.began is None and self.begins(kwargs):
            self.began = time.monotonic()
        if self.began is not None and time.monotonic() - self.began < self.seconds:
            self.refused += 1
            raise OperationalError("connection refused (simulated outage)")
        return self.function(**kwargs)


def test_results_logged_while_the_database_is_away_are_stored_once_it_answers(run_job, log_text, monkeypatch):
    metrics = Outage(events.metrics_log, 1.5)
    logs = Outage(executor.logs_append, 1.5)
    monkeypatch.setattr(events, "metrics_log", metrics)
    monkeypatch.setattr(executor, "logs_append", logs)
    run, outcome = run_job(TICKING)
    assert outcome.state == "succeeded" and metrics.refused and logs.refused
    assert list(run.metrics.filter(key="loss").order_by("step").values_list("step", flat=True)) == list(range(20))
    text = log_text(run)
    assert all(text.count(f"step {i}\n") + text.endswith(f"step {i}") == 1 for i in range(20))
    assert "database unreachable (connection refused (simulated outage))" in text
    assert "database reachable again" in text


def test_a_job_ending_during_an_outage_is_stored_when_the_database_answers_within_patience(run_job, monkeypatch):
    logs = Outage(executor.logs_append, 2.0, begins=lambda kwargs: any(t == "done" for _, _, t in kwargs["lines"]))
    monkeypatch.setattr(executor, "logs_append", logs)
    run, outcome = run_job("import time\ntime.sleep(1)\nprint('done')\n")
    assert outcome.state == "succeeded" and logs.refused
    assert run.log_lines.filter(text="done").count() == 1


def test_past_its_patience_the_attempt_stays_running_with_its_folder_kept(submit_code, claimed, settings,
                                                                          monkeypatch):
    monkeypatch.setattr(executor, "logs_append", Outage(executor.logs_append, 3600))
    run = claimed(submit_code("from engine import track\ntrack.log({'loss': 1.0}, step=0)\n"))
    with pytest.raises(ResultsUnsaved, match="did not answer for 2 s"):
        execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                limits=JobLimits(wall_seconds=60), db_patience=2)
    folder = settings.CONFIG.data_dir / "runs" / str(run.id) / str(run.attempt)
    assert '"loss"' in (folder / EVENTS_FILE).read_text()  # nothing is lost: the results wait on disk
    run.refresh_from_db()
    assert run.state == RunState.RUNNING


def test_the_outcome_is_recorded_once_the_database_answers_again(submit_code, claimed, monkeypatch):
    refused = []

    def flaky_transition(**kwargs):
        if kwargs["to_state"] == RunState.SUCCEEDED and len(refused) < 2:
            refused.append(kwargs)
            raise OperationalError("server closed the connection unexpectedly")
        return run_transition(**kwargs)

    monkeypatch.setattr(tasks, "run_transition", flaky_transition)
    run = claimed(submit_code("print('ok')"), start=False)
    assert execute_run(run.id, run.attempt, "w-test") == "succeeded"
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED and len(refused) == 2


def test_a_run_no_task_holds_is_handed_back_as_lost_by_the_heartbeat(submit_code, claimed, monkeypatch):
    orphan = claimed(submit_code("print('x')"))
    held = claimed(submit_code("print('y')"))
    monkeypatch.setattr(main, "attempts_in_hand", lambda: {(held.id, held.attempt)})
    _hand_back_orphans(orphan.worker_id, "w-test", "no longer holds it")
    orphan.refresh_from_db()
    held.refresh_from_db()
    assert orphan.state == RunState.LOST and held.state == RunState.RUNNING
    assert orphan.events.last().reason == "worker w-test no longer holds it"


def test_a_duplicate_delivery_leaves_the_running_attempt_in_hand(submit_code, claimed):
    run = claimed(submit_code("print('x')"))  # running, held by a task of this process
    with tasks._in_hand_lock:
        tasks._in_hand[(run.id, run.attempt)] += 1
    try:
        assert execute_run(run.id, run.attempt, "w-test") == "not claimed"
        assert (run.id, run.attempt) in tasks.attempts_in_hand()
    finally:
        with tasks._in_hand_lock:
            del tasks._in_hand[(run.id, run.attempt)]


def test_the_gate_waits_longer_after_each_failure_and_gives_up_past_its_patience():
    calls = []

    def down():
        calls.append(time.monotonic())
        raise OperationalError("down")

    gate = DatabaseGate()
    with pytest.raises(ResultsUnsaved, match="storing: the database did not answer for 2 s"):
        gate.insist(down, patience=2, what="storing")
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert len(calls) == 3 and gaps[0] >= 0.45 and gaps[1] >= 0.95  # 0.5 s, then 1 s; the next would end past 2 s

"""A promotion sweep's trial waits at its rung: the worker names the rung (KILN_SWEEP_RUNG), the job
(`engine.track.rung`) blocks once the rung's report and a checkpoint after it are written, by the same
rule the sweep controller reads rungs with, and trains on after a bounded wait."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factories import ProjectFactory, WorkerFactory  # tests/webapp/, on the path by tests/worker/conftest.py

from engine.track.rung import RungWait
from engine.track.session import Session
from scheduler.sweeps.controller import _with_rung_reached, sweeps_tick, trial_records
from scheduler.sweeps.promotion import ASHA_RUNG
from webapp.experiments.lifecycle import run_transition
from webapp.experiments.models import Artifact, Run, RunState, Sweep
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.spec import SweepSpec
from webapp.experiments.submit import CodeUpload, run_submit
from worker.executor import execute, sweep_rung
from worker.limits import JobLimits


class FakeClock:
    """time.monotonic and time.sleep for a RungWait: sleeping advances the clock; `on_sleep` sees each nap."""

    def __init__(self, on_sleep=None):
        self.now, self.slept, self.on_sleep = 100.0, 0.0, on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            self.on_sleep()
        self.now += seconds
        self.slept += seconds


def _kiln_session(tmp_path, rung: dict | None, *, wait: str | None = "7", rank: str | None = None):
    env = {"KILN_RUN_DIR": str(tmp_path), "KILN_EVENTS": str(tmp_path / "events")}
    if rung is not None:
        env["KILN_SWEEP_RUNG"] = json.dumps(rung)
    if wait is not None:
        env["KILN_SWEEP_RUNG_WAIT"] = wait
    if rank is not None:
        env["RANK"] = rank
    session = Session.from_environment(env)
    clock = FakeClock(lambda: clock.events.append([json.loads(line)["type"] for line in
                                                  (tmp_path / "events").read_text().splitlines()]))
    clock.events = []
    if session._rung is not None:
        session._rung.clock, session._rung.sleep = clock.clock, clock.sleep
    return session, clock


def test_by_epoch_the_job_waits_once_its_nth_report_and_a_checkpoint_after_it_are_written(tmp_path, capsys):
    session, clock = _kiln_session(tmp_path, {"rung": 1, "metric": "val_loss", "iteration": "epoch", "at": 2})
    session.log({"val_loss": 0.9, "epoch": 1}, step=10)
    session.save_checkpoint({"w": np.ones(1)}, step=10)
    session.log({"loss": 0.5}, step=15)  # other metrics are not the objective's reports
    assert clock.slept == 0
    session.log({"val_loss": 0.8, "epoch": 2}, step=20)
    assert clock.slept == 0  # no checkpoint covers the rung's report yet: a resume would redo the epoch
    session.save_checkpoint({"w": np.ones(1)}, step=20)
    assert clock.slept == 7  # the whole bounded wait (the worker stops a real job long before)
    assert clock.events[0] == ["metrics", "checkpoint", "metrics", "metrics", "checkpoint"]  # written before it waits
    out = capsys.readouterr().out
    assert "kiln: reached rung 1 (epoch 2): waits for the sweep controller (at most 7 s)" in out
    assert "no word from the sweep controller in 7 s at rung 1: training goes on" in out
    session.log({"val_loss": 0.7, "epoch": 3}, step=30)  # past the wait: it trains on as before, and waits no more
    session.save_checkpoint({"w": np.ones(1)}, step=30)
    assert clock.slept == 7
    session.close()


def test_a_resumed_attempt_counts_the_reports_earlier_attempts_stored(tmp_path):
    session, clock = _kiln_session(tmp_path, {"rung": 1, "metric": "val_loss", "iteration": "epoch", "at": 4,
                                              "before": 3})
    session.log({"val_loss": 0.5}, step=40)
    session.save_checkpoint({"w": np.ones(1)}, step=40)
    assert clock.slept == 7
    session.close()


def test_by_step_the_first_report_at_or_past_the_rung_counts_and_a_checkpoint_first_waits_in_log(tmp_path):
    session, clock = _kiln_session(tmp_path, {"rung": 0, "metric": "val_loss", "iteration": "step", "at": 25})
    session.log({"val_loss": 0.9}, step=20)
    session.save_checkpoint({"w": np.ones(1)}, step=20)
    assert clock.slept == 0
    session.save_checkpoint({"w": np.ones(1)}, step=30)  # a script that checkpoints before it validates
    assert clock.slept == 0
    session.log({"val_loss": 0.8}, step=30)
    assert clock.slept == 7
    session.close()


def test_without_the_rung_outside_kiln_and_on_other_ranks_nothing_waits(tmp_path):
    plain, _ = _kiln_session(tmp_path, None)
    assert plain._rung is None
    rank1, _ = _kiln_session(tmp_path, {"rung": 0, "metric": "m", "iteration": "epoch", "at": 1}, rank="1")
    assert rank1._rung is None
    env = {"KILN_SWEEP_RUNG": json.dumps({"rung": 0, "metric": "m", "iteration": "epoch", "at": 1})}
    assert Session.from_environment(env, root=tmp_path / "local")._rung is None  # only a Kiln job is a trial
    plain.close()
    rank1.close()


@pytest.mark.parametrize(("env", "message"), [
    ({"KILN_SWEEP_RUNG": "{"}, "must be JSON"),
    ({"KILN_SWEEP_RUNG": "[1]"}, "JSON object"),
    ({"KILN_SWEEP_RUNG": '{"rung": 0, "metric": "m", "iteration": "epoch", "at": 0}'}, "`at` >= 1"),
    ({"KILN_SWEEP_RUNG": '{"rung": true, "metric": "m", "iteration": "epoch", "at": 1}'}, "rung >= 0"),
    ({"KILN_SWEEP_RUNG": '{"rung": 0, "metric": "", "iteration": "epoch", "at": 1}'}, "objective's name"),
    ({"KILN_SWEEP_RUNG": '{"rung": 0, "metric": "m", "iteration": "time", "at": 1}'}, "'epoch' or 'step'"),
    ({"KILN_SWEEP_RUNG": '{"rung": 0, "metric": "m", "iteration": "step", "at": 1}', "KILN_SWEEP_RUNG_WAIT": "soon"},
     "number of seconds"),
    ({"KILN_SWEEP_RUNG": '{"rung": 0, "metric": "m", "iteration": "step", "at": 1}', "KILN_SWEEP_RUNG_WAIT": "-1"},
     ">= 0"),
])
def test_a_malformed_rung_is_a_clear_error(env, message):
    with pytest.raises(ValueError, match=message):
        RungWait.from_environment(env)


# The worker's side, against the database ------------------------------------------------------------

def _sweep(project, *, iteration="epoch", min_iter=1, max_iter=9, variant="promotion", code=False):
    sweep = {"method": "random", "max_runs": 2, "parallel": 2, "metric": {"name": "val_loss", "goal": "minimize"},
             "early_terminate": {"type": "asha", "variant": variant, "min_iter": min_iter, "max_iter": max_iter,
                                 "eta": 3, "iteration": iteration}}
    if code:
        spec = {"params": {}, "sweep": {**sweep, "parameters": {"lr": {"min": 1e-3, "max": 0.1}}}}
        upload = CodeUpload(filename="main.py", data=RUNG_SCRIPT.encode())
        return run_submit(user=project.owner_user, project=project, spec=spec, code=upload).sweep
    spec = {"recipe": {"model": "mlp", "epochs": max_iter},
            "sweep": {**sweep, "parameters": {"optimizer.lr": {"min": 1e-4, "max": 0.1}}}}
    if variant != "promotion":
        del spec["sweep"]["early_terminate"]["variant"], spec["sweep"]["early_terminate"]["max_iter"]
    return run_submit(user=project.owner_user, project=project, spec=spec).sweep


def _trial(sweep, *, rung: int | None = None) -> Run:
    sweeps_tick()
    run = Run.objects.filter(sweep=sweep).order_by("number").first()
    if rung is not None:
        attrs = dict(Sweep.objects.get(id=sweep.id).trial_attrs or {})
        attrs[str(run.id)] = {**attrs.get(str(run.id), {}), ASHA_RUNG: rung}
        Sweep.objects.filter(id=sweep.id).update(trial_attrs=attrs)
    return run


def _report(run, step, value=0.5):
    metrics_log(run_id=run.id, points=[MetricPoint("val_loss", step, value, 1.0)])


def _checkpoint(run, step):
    Artifact.objects.create(run=run, name=f"checkpoints/step-{step}.ckpt", kind="checkpoint", step=step, size=1,
                            sha256="0" * 64, storage_path="x")


@pytest.mark.django_db
def test_a_promotion_trial_is_told_its_rung_and_the_reports_earlier_attempts_stored():
    sweep = _sweep(ProjectFactory())  # rungs at epochs 1 and 3 (max_iter 9, eta 3)
    run = _trial(sweep)
    assert json.loads(sweep_rung(run)) == {"rung": 0, "metric": "val_loss", "iteration": "epoch", "at": 1, "before": 0}
    _report(run, 10)
    _trial(sweep, rung=1)
    assert json.loads(sweep_rung(run)) == {"rung": 1, "metric": "val_loss", "iteration": "epoch", "at": 3, "before": 1}
    _trial(sweep, rung=2)
    assert sweep_rung(run) is None  # promoted past the last rung: it trains to max_iter


@pytest.mark.django_db
def test_by_step_the_rung_is_its_step():
    sweep = _sweep(ProjectFactory(), iteration="step", min_iter=25, max_iter=300)
    run = _trial(sweep, rung=1)
    assert json.loads(sweep_rung(run)) == {"rung": 1, "metric": "val_loss", "iteration": "step", "at": 75, "before": 0}


@pytest.mark.django_db
def test_runs_outside_a_promotion_sweep_get_no_rung(submit_code):
    assert sweep_rung(submit_code("print(1)")) is None
    sweep = _sweep(ProjectFactory(), variant="stopping")
    assert sweep_rung(_trial(sweep)) is None


@pytest.mark.django_db
@pytest.mark.parametrize(("iteration", "rung", "earlier", "events"), [
    # by epoch, rung 1 = the 3rd report; reports and checkpoints in the recipe's order, one checkpoint missing
    ("epoch", 1, [], [("report", 10), ("checkpoint", 10), ("report", 20), ("report", 30), ("report", 40),
                      ("checkpoint", 40)]),
    ("epoch", 1, [10, 20], [("report", 30), ("checkpoint", 25), ("checkpoint", 30)]),  # a resumed attempt
    ("epoch", 0, [], [("checkpoint", 10), ("report", 10)]),  # a checkpoint before its report covers it
    # by step, rung 1 = step 75: the first report at or past it
    ("step", 1, [], [("report", 50), ("checkpoint", 50), ("report", 74), ("checkpoint", 80), ("report", 90),
                     ("checkpoint", 89), ("checkpoint", 90)]),
    ("step", 0, [], [("checkpoint", 30), ("report", 25)]),
])
def test_the_job_waits_exactly_when_the_controller_would_pause(iteration, rung, earlier, events):
    """The job's rule (engine.track.rung) and the controller's (`_with_rung_reached`) on the same points."""
    worker = WorkerFactory()
    sweep = _sweep(ProjectFactory(), iteration=iteration, min_iter=1 if iteration == "epoch" else 25,
                   max_iter=9 if iteration == "epoch" else 300)
    run = _trial(sweep, rung=rung)
    assert run_transition(run_id=run.id, from_states=(RunState.QUEUED,), to_state=RunState.SCHEDULED,
                          worker_id=worker.id, new_attempt=True)
    assert run_transition(run_id=run.id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING)
    for step in earlier:  # an earlier attempt's reports, each checkpointed
        _report(run, step)
        _checkpoint(run, step)
    job = RungWait.from_environment({"KILN_SWEEP_RUNG": sweep_rung(run)})
    assert job is not None
    spec = SweepSpec.model_validate(Sweep.objects.get(id=sweep.id).spec)
    seen = []
    for kind, step in events:
        if kind == "report":
            _report(run, step)
            job.logged(step, {"val_loss": 0.5})
        else:
            _checkpoint(run, step)
            job.checkpointed(step)
        [record] = [r for r in trial_records(Sweep.objects.get(id=sweep.id), spec) if r.run_id == run.id]
        seen.append((kind, step, job.ready, _with_rung_reached(record, spec).reached is not None))
    assert [(k, s, job_waits) for k, s, job_waits, _ in seen] == [(k, s, pauses) for k, s, _, pauses in seen]
    assert seen[-1][2], seen  # every case ends at its rung


RUNG_SCRIPT = """\
import os
os.environ["KILN_SWEEP_RUNG_WAIT"] = "0.5"  # no controller runs here: the job trains on after half a second
from engine import track
print("rung:", os.environ.get("KILN_SWEEP_RUNG"))
for epoch in (1, 2):
    track.log({"val_loss": 1.0 / epoch}, step=epoch)
    track.save_checkpoint({"epoch": epoch}, step=epoch)
"""


@pytest.mark.django_db
def test_a_promotion_trials_job_sees_its_rung_and_waits_there(claimed, settings, log_text, run_job):
    run = claimed(_trial(_sweep(ProjectFactory(), code=True)))
    outcome = execute(run, attempt=run.attempt, worker_name="w-test", data_dir=settings.CONFIG.data_dir,
                      limits=JobLimits(wall_seconds=60))
    text = log_text(run)
    assert outcome.state == "succeeded", text
    assert 'rung: {"rung": 0, "metric": "val_loss", "iteration": "epoch", "at": 1, "before": 0}' in text
    assert text.count("waits for the sweep controller") == 1, text  # at epoch 1 only
    assert "kiln: reached rung 0 (epoch 1)" in text and "training goes on" in text
    plain, outcome = run_job(RUNG_SCRIPT)
    assert "rung: None" in log_text(plain) and "waits for" not in log_text(plain)  # not a sweep trial

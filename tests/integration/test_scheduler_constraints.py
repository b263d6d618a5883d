"""One scheduler tick in-process, against worker rows: isolation, draining and memory decide placement."""

from __future__ import annotations

import pytest
from factories import ProjectFactory, WorkerFactory

from scheduler.dispatch import Dispatcher
from scheduler.loop import Scheduler
from scheduler.policy import Assignment
from webapp.cluster.models import Worker
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import CodeUpload, run_submit


@pytest.fixture
def project(db, settings, tmp_path):
    storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    return ProjectFactory()


def submit_code(project) -> Run:
    upload = CodeUpload(filename="main.py", data=b"print('hi')\n")
    return run_submit(user=project.owner_user, project=project, spec={}, code=upload).runs[0]


def submit_recipe(project) -> Run:
    return run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]


def test_code_run_waits_for_an_isolated_worker_then_is_placed(app, project, kiln_config):
    worker = WorkerFactory(isolated=False)
    code, recipe = submit_code(project), submit_recipe(project)

    Scheduler(app=app).tick()

    code.refresh_from_db()
    recipe.refresh_from_db()
    assert code.state == RunState.QUEUED and code.pending_reason.startswith("no isolated worker: ")
    assert "KILN_ALLOW_UNISOLATED_CODE=1" in code.pending_reason
    assert recipe.state == RunState.SCHEDULED  # trusted recipes run anywhere

    Worker.objects.filter(id=worker.id).update(isolated=True)
    Scheduler(app=app).tick()

    code.refresh_from_db()
    assert (code.state, code.worker_id) == (RunState.SCHEDULED, worker.id)


def test_the_admins_opt_out_lets_code_run_on_an_unisolated_worker(app, project, kiln_config):
    WorkerFactory(isolated=False)
    code = submit_code(project)
    kiln_config(allow_unisolated_code=True)

    Scheduler(app=app).tick()

    code.refresh_from_db()
    assert code.state == RunState.SCHEDULED


def test_a_draining_worker_gets_no_runs(app, project):
    WorkerFactory(name="stopping", draining=True)
    run = submit_recipe(project)

    Scheduler(app=app).tick()

    run.refresh_from_db()
    assert run.state == RunState.QUEUED and app.sent == []

    WorkerFactory(name="other")
    Scheduler(app=app).tick()

    run.refresh_from_db()
    assert run.state == RunState.SCHEDULED and run.worker.name == "other"


def test_a_worker_that_starts_draining_after_the_pass_read_it_is_not_claimed(app, project):
    worker = WorkerFactory()
    run = submit_recipe(project)
    Worker.objects.filter(id=worker.id).update(draining=True)  # between the pass and the claim

    started = Dispatcher(app, resend_after=30.0).start([Assignment(run.id, worker.name, (), 1)], {worker.name: worker})

    run.refresh_from_db()
    assert started == 0 and run.state == RunState.QUEUED


def test_memory_held_by_scheduled_runs_is_counted(app, project, kiln_config):
    kiln_config(run_memory_gb=4.0)
    WorkerFactory(memory_mb=6 * 1024)
    first, second = submit_recipe(project), submit_recipe(project)
    Run.objects.filter(id=second.id).update(memory_gb=0)  # a row from before the field: the default

    Scheduler(app=app).tick()
    Scheduler(app=app).tick()

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == RunState.SCHEDULED and second.state == RunState.QUEUED
    assert second.pending_reason.startswith("waiting for 4 GB of memory on one worker; most free is 2 GB")


def test_a_run_bigger_than_every_worker_is_told_so(app, project):
    WorkerFactory(memory_mb=round(31.5 * 1024))
    run = submit_recipe(project)
    Run.objects.filter(id=run.id).update(memory_gb=64)

    Scheduler(app=app).tick()

    run.refresh_from_db()
    assert run.pending_reason == "asks for 64 GB of memory; the largest worker has 31.5 GB"

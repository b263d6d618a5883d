"""Submitting stores everything or nothing; transitions are compare-and-swap with an event each."""

import io
import threading
import zipfile

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db import connection

from webapp.accounts.models import Role
from webapp.cluster.services import worker_register
from webapp.experiments.lifecycle import TransitionError, run_cancel, run_claim_attempt, run_transition
from webapp.experiments.models import Run, RunEvent, RunState
from webapp.experiments.spec import SpecError
from webapp.experiments.submit import CodeUpload, run_resubmit, run_submit

from .factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db
SCRIPT = b"import engine.track as track\ntrack.log({'loss': 1.0}, step=0)\n"


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}


def _zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_recipe_submit_queues_a_numbered_run_with_an_event():
    project = ProjectFactory()
    result = run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}, "tags": ["baseline"]})
    run = result.runs[0]
    assert (run.number, run.state, run.kind, run.name) == (1, RunState.QUEUED, "recipe", "mlp-digits")
    assert [t.name for t in run.tags.all()] == ["baseline"]
    assert list(run.events.values_list("to_state", flat=True)) == ["queued"]
    assert run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "cnn"}}).runs[0].number == 2


def test_code_submit_stores_the_code_content_addressed():
    project = ProjectFactory()
    run = run_submit(user=project.owner_user, project=project, spec={"params": {"lr": 0.1}}, code=CodeUpload("train.py", SCRIPT)).runs[0]
    assert run.kind == "code" and run.entrypoint == "train.py" and run.params == {"lr": 0.1}
    with default_storage.open(run.code_path) as handle:
        assert handle.read() == SCRIPT


def test_sweep_creates_one_run_per_point():
    project = ProjectFactory()
    spec = {"recipe": {"model": "mlp"}, "sweep": {"parameters": {"optimizer.lr": {"values": [0.1, 0.01, 0.001]}}}}
    result = run_submit(user=project.owner_user, project=project, spec=spec)
    assert result.sweep is not None and len(result.runs) == 3
    assert [r.params["optimizer.lr"] for r in result.runs] == [0.1, 0.01, 0.001]
    assert [r.number for r in result.runs] == [1, 2, 3]


@pytest.mark.parametrize(
    ("filename", "data", "field"),
    [
        ("evil.zip", _zip({"../escape.py": b"x", "main.py": b"x"}), "code"),
        ("abs.zip", _zip({"/etc/passwd": b"x", "main.py": b"x"}), "code"),
        ("noentry.zip", _zip({"other.py": b"x"}), "entrypoint"),
        ("big.py", b"#" * (5 * 1024 * 1024 + 1), "code"),
        ("notes.txt", b"hello", "code"),
        ("broken.zip", b"PK\x03\x04 not really", "code"),
    ],
)
def test_unsafe_or_unusable_code_is_refused_and_nothing_is_stored(filename, data, field, tmp_path):
    project = ProjectFactory()
    with pytest.raises(SpecError) as excinfo:
        run_submit(user=project.owner_user, project=project, spec={}, code=CodeUpload(filename, data))
    assert excinfo.value.errors[0]["field"] == field
    assert Run.objects.count() == 0 and not any(tmp_path.rglob("*.*"))
    project.refresh_from_db()
    assert project.run_counter == 0


def test_viewer_cannot_submit(settings):
    project = ProjectFactory(owner_user=None, team=MembershipFactory().team)
    viewer = MembershipFactory(team=project.team, role=Role.VIEWER).user
    with pytest.raises(PermissionDenied):
        run_submit(user=viewer, project=project, spec={"recipe": {"model": "mlp"}})
    assert Run.objects.count() == 0


def _queued_run():
    project = ProjectFactory()
    return run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]


def _worker():
    return worker_register(name="w", hostname="h", queue="q", cpu_slots=2, gpus=[])


def test_claim_starts_an_attempt_and_a_second_claim_fails():
    run, worker = _queued_run(), _worker()
    assert run_claim_attempt(run_id=run.id, worker_id=worker.id, gpu_indices=[]) is True
    assert run_claim_attempt(run_id=run.id, worker_id=worker.id, gpu_indices=[]) is False
    run.refresh_from_db()
    assert (run.state, run.attempt, run.worker_id) == (RunState.SCHEDULED, 1, worker.id)
    assert run.scheduled_at is not None
    assert list(run.events.values_list("from_state", "to_state", "attempt")) == [("", "queued", 0), ("queued", "scheduled", 1)]


def test_a_late_message_for_an_old_attempt_changes_nothing():
    run, worker = _queued_run(), _worker()
    run_claim_attempt(run_id=run.id, worker_id=worker.id, gpu_indices=[])
    assert run_transition(run_id=run.id, from_states=("scheduled",), to_state="running", expected_attempt=2) is False
    assert run_transition(run_id=run.id, from_states=("scheduled",), to_state="running", expected_attempt=1) is True


def test_transitions_the_lifecycle_never_allows_raise():
    run = _queued_run()
    with pytest.raises(TransitionError):
        run_transition(run_id=run.id, from_states=("queued",), to_state="succeeded")


def test_cancel_finishes_the_run_once_and_records_who():
    run = _queued_run()
    assert run_cancel(user=run.owner, run=run) is True
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED and run.finished_at is not None
    assert run_cancel(user=run.owner, run=run) is False
    assert RunEvent.objects.filter(run=run, to_state="cancelled").get().reason == f"cancelled by {run.owner.username}"


def test_rerun_copies_spec_and_code():
    project = ProjectFactory()
    first = run_submit(user=project.owner_user, project=project, spec={"params": {"a": 1}}, code=CodeUpload("t.py", SCRIPT)).runs[0]
    again = run_resubmit(user=project.owner_user, run=first)
    assert again.number == 2 and again.code_sha256 == first.code_sha256 and again.params == {"a": 1}
    assert again.cloned_from_id == first.id


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_run_have_exactly_one_winner():
    if connection.vendor != "postgresql":
        pytest.skip("needs a database with concurrent writers (PostgreSQL)")
    run, worker = _queued_run(), _worker()
    results = []

    def claim():
        results.append(run_claim_attempt(run_id=run.id, worker_id=worker.id, gpu_indices=[]))
        connection.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert RunEvent.objects.filter(run=run, to_state="scheduled").count() == 1


def test_a_run_stores_its_memory_limit_or_the_servers_default(settings):
    import dataclasses

    settings.CONFIG = dataclasses.replace(settings.CONFIG, run_memory_gb=6.0)
    project = ProjectFactory()
    own = run_submit(user=project.owner_user, project=project,
                     spec={"recipe": {"model": "mlp"}, "resources": {"memory_gb": 1.5}}).runs[0]
    default = run_submit(user=project.owner_user, project=project, spec={"recipe": {"model": "mlp"}}).runs[0]
    assert (own.memory_gb, default.memory_gb) == (1.5, 6.0)
    assert "memory_gb" not in default.spec["resources"]  # a re-run takes the default of its day
    Run.objects.filter(id=own.id).update(memory_gb=0)  # a run from before the field
    own.refresh_from_db()
    assert own.memory_limit_gb == 6.0

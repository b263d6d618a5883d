"""One live process per worker name (finding 6): registration is a compare-and-swap on the row as read."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from webapp.cluster import services
from webapp.cluster.models import Worker
from webapp.cluster.services import (
    WorkerNameTaken,
    worker_claim_name,
    worker_drain,
    worker_heartbeat,
    worker_record_restart,
    worker_restarts_reset,
    worker_sign_off,
)

pytestmark = pytest.mark.django_db
HOST = os.uname().nodename


def _claim(instance: str, *, pid: int | None = None, hostname: str = HOST, name: str = "w1"):
    return worker_claim_name(name=name, hostname=hostname, queue=f"kiln.worker.{name}", cpu_slots=2, gpus=[],
                             instance_id=instance, pid=pid, memory_mb=1024)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_new_name_is_registered_with_its_instance_pid_and_memory():
    first = _claim("a" * 32, pid=os.getpid())
    row = Worker.objects.get(name="w1")
    assert not first.took_over and first.predecessor == ""
    assert (row.instance_id, row.pid, row.memory_mb, row.draining) == ("a" * 32, os.getpid(), 1024, False)


def test_a_second_process_is_refused_while_the_holder_lives_naming_its_host_and_pid():
    _claim("a" * 32, pid=os.getpid())
    with pytest.raises(WorkerNameTaken) as refused:
        _claim("b" * 32, pid=12345)
    message = str(refused.value)
    assert f"pid {os.getpid()} on {HOST}" in message and "KILN_WORKER_NAME" in message and "\n" not in message
    assert Worker.objects.get(name="w1").instance_id == "a" * 32  # nothing changed


def test_a_live_holder_on_another_host_is_never_taken_over():
    _claim("a" * 32, pid=1, hostname="elsewhere")
    with pytest.raises(WorkerNameTaken, match="on elsewhere"):
        _claim("b" * 32, pid=os.getpid())


def test_a_holder_whose_pid_is_gone_is_taken_over_at_once_and_named_as_predecessor():
    _claim("a" * 32, pid=_dead_pid())
    taken = _claim("b" * 32, pid=os.getpid())
    assert taken.took_over and taken.predecessor == "a" * 32
    assert Worker.objects.get(name="w1").instance_id == "b" * 32


def test_a_reused_pid_is_not_the_holder():
    """The pid is alive but its process started after the holder registered: another process."""
    _claim("a" * 32, pid=os.getpid())
    before_this_process = timezone.now() - timedelta(seconds=time_alive() + 60)
    Worker.objects.filter(name="w1").update(started_at=before_this_process)
    assert _claim("b" * 32, pid=4321).took_over


def time_alive() -> float:
    return timezone.now().timestamp() - psutil.Process().create_time()


@pytest.mark.parametrize("how", ["stale", "stopped"])
def test_a_stale_or_stopped_row_is_taken_over_even_from_a_live_pid(how):
    holder = _claim("a" * 32, pid=os.getpid(), hostname="elsewhere").worker
    if how == "stale":
        Worker.objects.filter(id=holder.id).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    else:
        worker_sign_off(worker_id=holder.id, instance_id="a" * 32)
    assert _claim("b" * 32, pid=os.getpid()).predecessor == "a" * 32


def test_taking_over_clears_draining_and_keeps_the_supervisors_counts():
    holder = _claim("a" * 32, pid=_dead_pid()).worker
    Worker.objects.filter(id=holder.id).update(draining=True, restarts=2, last_error="exit code -9")
    _claim("b" * 32, pid=os.getpid())
    row = Worker.objects.get(id=holder.id)
    assert (row.draining, row.restarts, row.last_error) == (False, 2, "exit code -9")


def test_a_new_supervisor_starts_the_restart_count_again():
    holder = _claim("a" * 32, pid=os.getpid()).worker
    worker_record_restart(name="w1", error="killed by SIGKILL")
    assert Worker.objects.get(id=holder.id).restarts == 1
    worker_restarts_reset(name="w1")
    row = Worker.objects.get(id=holder.id)
    assert (row.restarts, row.last_error) == (0, "")


def test_of_two_starters_taking_over_one_dead_holder_only_one_wins(monkeypatch):
    """C read the dead holder's row; B takes it over before C's update: C's swap fails and it is refused."""
    _claim("a" * 32, pid=_dead_pid())
    real_refusal = services._refusal
    seen = []

    def b_wins_meanwhile(row, **kwargs):
        seen.append(row.instance_id)
        refusal = real_refusal(row, **kwargs)
        if len(seen) == 1:
            monkeypatch.setattr(services, "_refusal", real_refusal)
            _claim("b" * 32, pid=os.getpid())  # B, between C's read and C's swap
            monkeypatch.setattr(services, "_refusal", b_wins_meanwhile)
        return refusal

    monkeypatch.setattr(services, "_refusal", b_wins_meanwhile)
    with pytest.raises(WorkerNameTaken, match=f"pid {os.getpid()}"):
        _claim("c" * 32, pid=os.getpid())
    assert seen == ["a" * 32, "b" * 32]  # C decided again on the row as B left it
    assert Worker.objects.get(name="w1").instance_id == "b" * 32


def test_heartbeat_drain_and_sign_off_change_only_the_holders_row():
    first = uuid.uuid4().hex
    worker = _claim(first, pid=_dead_pid()).worker
    _claim(uuid.uuid4().hex, pid=os.getpid())  # taken over
    assert worker_heartbeat(worker_id=worker.id, instance_id=first) is False
    assert worker_drain(worker_id=worker.id, instance_id=first) is False
    worker_sign_off(worker_id=worker.id, instance_id=first)
    row = Worker.objects.get(id=worker.id)
    assert row.stopped_at is None and row.draining is False

"""`kiln workers` against a real server: each worker's state and whether its sandbox isolates code runs."""

from __future__ import annotations

from webapp.client import cli
from webapp.cluster.services import worker_record_isolation, worker_register

from ..webapp.test_worker_isolation import FAILED, HELD


def test_kiln_workers_lists_isolation(server, monkeypatch, capsys):
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)
    for name, isolation in (("gpu-a", HELD), ("cpu-b", FAILED)):
        worker = worker_register(name=name, hostname="host", queue=f"kiln.worker.{name}", cpu_slots=2, gpus=[])
        worker_record_isolation(worker_id=worker.id, isolation=isolation)
    assert cli.main(["workers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["WORKER", "STATE", "ISOLATED", "RESTARTS", "ISOLATION"]
    assert lines[1].split()[:4] == ["cpu-b", "online", "NO", "0"] and FAILED["summary"] in lines[1]
    assert lines[2].split()[:4] == ["gpu-a", "online", "yes", "0"]

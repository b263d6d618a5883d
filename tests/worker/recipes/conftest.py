"""Recipe tests train tiny recipes outside Kiln: each in its own local engine.track run folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import track

KILN_VARIABLES = ("KILN_RUN_DIR", "KILN_EVENTS", "KILN_CONFIG", "KILN_RESUME")


@pytest.fixture
def local_run(tmp_path, monkeypatch):
    """`local_run(resume=None)` -> a fresh local track session under tmp_path (resuming from a file if given)."""
    for name in KILN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    sessions = []

    def start(resume=None):
        if resume is None:
            monkeypatch.delenv("KILN_RESUME", raising=False)
        else:
            monkeypatch.setenv("KILN_RESUME", str(resume))
        session = track.init(dir=tmp_path / "kiln-runs")
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()

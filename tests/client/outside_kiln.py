"""A script that logs to a Kiln server from outside Kiln (KILN_URL, KILN_TOKEN, KILN_RUN_ID), for the client tests."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.services import REPO
from webapp.client.client import Client


def new_run(server, client: Client) -> dict:
    return client.submit(spec={"recipe": {"model": "mlp"}}, project=server.project_path)[0]


def run_outside_kiln(server, run_id: int, script: str, cwd) -> subprocess.CompletedProcess:
    """Run `script` as a fresh process that sends to run `run_id`; it must exit 0."""
    env = {**os.environ, "KILN_URL": server.url, "KILN_TOKEN": server.token, "KILN_RUN_ID": str(run_id),
           "PYTHONPATH": str(REPO)}
    env.pop("KILN_RUN_DIR", None)
    env.pop("KILN_EVENTS", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done

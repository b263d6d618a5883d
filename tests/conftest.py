"""Shared test set-up: in CI every backing service must be there; elsewhere a missing one skips."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from services import chromium_path, in_ci, reachable, require

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = os.environ.get("DATABASE_URL", "sqlite (embedded default)")
    broker = os.environ.get("REDIS_URL", "filesystem transport (embedded default)")
    return [f"kiln services: database={_redact(database)} broker={_redact(broker)} ci={in_ci()}"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """With CI=true a missing service fails the whole run at once, loudly."""
    if not in_ci():
        return
    problems = []
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        problems.append("CI=true but DATABASE_URL does not point at PostgreSQL")
    elif not reachable(database_url, 5432):
        problems.append(f"CI=true but PostgreSQL at {_redact(database_url)} does not answer")
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        problems.append("CI=true but REDIS_URL is not set")
    elif not reachable(redis_url, 6379):
        problems.append(f"CI=true but Redis at {redis_url} does not answer")
    if importlib.util.find_spec("torch") is None:
        problems.append("CI=true but the torch test oracle is not installed (pip install -e '.[dev]')")
    if not chromium_path():
        problems.append("CI=true but chromium is not installed (apt-get install chromium)")
    if not shutil.which("bwrap"):
        problems.append("CI=true but bubblewrap is not installed (apt-get install bubblewrap)")
    if problems:
        raise pytest.UsageError("; ".join(problems))


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    require(bool(url) and reachable(url, 6379), "Redis is not available (set REDIS_URL)")
    return url


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def kiln_config(settings):
    """Replace fields of the running Config for one test: `kiln_config(redis_url=...)`."""

    def override(**fields):
        settings.CONFIG = dataclasses.replace(settings.CONFIG, **fields)
        return settings.CONFIG

    return override


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url

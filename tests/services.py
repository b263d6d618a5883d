"""Which backing services the test run uses, and the rule that CI never skips one.

`python tests/services.py` prints shell `export` lines for PostgreSQL and Redis when they
answer on this machine and DATABASE_URL / REDIS_URL are not already set; the Makefile
evaluates them, so `make test` uses the real services wherever they run.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

# NOTE: named after the calling shell, so test runs started side by side never share a database
# (pytest-django creates test_<name> and drops it at the end of the run).
LOCAL_POSTGRES = f"postgresql://postgres@127.0.0.1:5432/kiln_{os.getppid()}"
LOCAL_REDIS = "redis://127.0.0.1:6379/15"
REPO = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(url: str, default_port: int, timeout: float = 1.0) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout):
            return True
    except OSError:
        return False


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def mlflow_server_binary() -> Path | None:
    """The `mlflow` command of the test-only MLflow server (`make mlflow-server`), if installed."""
    for candidate in (os.environ.get("KILN_MLFLOW_SERVER", ""), str(REPO / ".venv-mlflow" / "bin" / "mlflow")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def require(condition: bool, reason: str) -> None:
    """Skip outside CI when a service is missing; fail in CI."""
    import pytest

    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required, not skipped)")
    pytest.skip(reason)


def _exports() -> list[str]:
    lines = []
    if not os.environ.get("DATABASE_URL") and reachable(LOCAL_POSTGRES, 5432):
        lines.append(f"export DATABASE_URL={LOCAL_POSTGRES}")
    if not os.environ.get("REDIS_URL") and reachable(LOCAL_REDIS, 6379):
        lines.append(f"export REDIS_URL={LOCAL_REDIS}")
    return lines


if __name__ == "__main__":
    print("\n".join(_exports()))

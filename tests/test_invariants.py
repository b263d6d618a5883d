"""The layering rules of ARCHITECTURE.md, checked on the source so a violation fails CI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ("django", "celery", "kombu", "webapp", "worker", "scheduler", "ninja")
POLICY_MODULES = ["policy.py", "policy_types.py", "fairshare.py", "placement.py", "pending_reasons.py", "quotas.py"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "engine").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_nothing_from_the_platform(path):
    assert not _imports(path) & set(PLATFORM)


def test_only_the_backend_imports_cupy():
    importers = [p.relative_to(ROOT).as_posix() for p in (ROOT / "engine").rglob("*.py") if "cupy" in _imports(p)]
    assert importers in ([], ["engine/backend.py"])


@pytest.mark.parametrize("name", POLICY_MODULES)
def test_scheduler_policy_never_touches_the_orm(name):
    assert not _imports(ROOT / "scheduler" / name) & {"django", "webapp", "celery"}


def test_client_code_imports_no_django():
    for name in ("client.py", "cli.py"):
        tree = ast.parse((ROOT / "webapp" / "client" / name).read_text())
        top_level = {
            (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert "django" not in top_level, name

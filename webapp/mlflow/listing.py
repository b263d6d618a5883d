"""A run's artifact names (paths with /) seen as MLflow's folder listing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def children(artifacts: Iterable[tuple[str, int]], folder: str) -> list[dict[str, Any]]:
    """The files and folders right inside `folder` ("" for the top), named relative to it, sorted by name.

    A folder exists while an artifact lies under it; `folder` naming a file lists nothing (as MLflow's stores).
    """
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    entries: dict[str, dict[str, Any]] = {}
    for name, size in artifacts:
        if not name.startswith(prefix):
            continue
        head, slash, _ = name[len(prefix):].partition("/")
        if slash:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": size}
    return [entries[name] for name in sorted(entries)]

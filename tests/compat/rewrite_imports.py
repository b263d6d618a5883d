"""Turn a PyTorch script into an engine script by rewriting its import statements, and nothing else.

``import torch`` -> ``import engine as torch``; ``import torch.nn as nn`` -> ``import engine.nn as nn``;
``from torch.utils.data import DataLoader`` -> ``from engine.utils.data import DataLoader``; and so on
for every ``torch`` submodule. ``import torch.nn`` (no alias) also binds ``torch``, as Python does.
Imports of other PyTorch distributions (torchvision, torchaudio, ...) are refused: the engine has no
counterpart, so the script could not run unchanged.

Example:
    >>> rewrite("import torch\\nimport torch.nn.functional as F\\n")
    'import engine as torch\\nimport engine.nn.functional as F\\n'
"""

from __future__ import annotations

import ast

SOURCE_PACKAGE = "torch"
TARGET_PACKAGE = "engine"


class RewriteError(ValueError):
    """The script imports something the engine cannot stand in for, or in a form we don't rewrite."""


def rewrite(source: str) -> str:
    """`source` with every torch import statement pointed at the engine; all other lines untouched."""
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        _refuse_foreign_torch_packages(names, node.lineno)
        if not any(_is_torch(name) for name in names):
            continue
        replacement = _replacement(node)
        if replacement is None:
            continue
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        line = lines[first]
        before, after = line[:node.col_offset], lines[last][node.end_col_offset or 0:]
        if before.strip() or after.strip():
            raise RewriteError(f"line {node.lineno}: put each torch import on its own line")
        edits.append((first, last, before + replacement + after))
    for first, last, text in sorted(edits, reverse=True):
        lines[first:last + 1] = [text]
    return "".join(lines)


def _is_torch(name: str) -> bool:
    return name == SOURCE_PACKAGE or name.startswith(SOURCE_PACKAGE + ".")


def _to_engine(name: str) -> str:
    return TARGET_PACKAGE + name[len(SOURCE_PACKAGE):]


def _refuse_foreign_torch_packages(names: list[str], lineno: int) -> None:
    for name in names:
        top = name.split(".")[0]
        if top.startswith(SOURCE_PACKAGE) and top != SOURCE_PACKAGE:
            raise RewriteError(f"line {lineno}: {top} has no engine counterpart; the script can't run unchanged")


def _replacement(node: ast.Import | ast.ImportFrom) -> str | None:
    if isinstance(node, ast.ImportFrom):
        names = ", ".join(a.name if a.asname is None else f"{a.name} as {a.asname}" for a in node.names)
        return f"from {_to_engine(node.module or '')} import {names}"
    parts = []
    binds_torch = False
    for alias in node.names:
        if not _is_torch(alias.name):
            parts.append(alias.name if alias.asname is None else f"{alias.name} as {alias.asname}")
        elif alias.asname is not None:
            parts.append(f"{_to_engine(alias.name)} as {alias.asname}")
        elif alias.name == SOURCE_PACKAGE:
            parts.append(f"{TARGET_PACKAGE} as {SOURCE_PACKAGE}")
        else:
            parts.append(_to_engine(alias.name))  # `import torch.nn` binds `torch`: bind it below
            binds_torch = True
    statement = "import " + ", ".join(parts)
    if binds_torch:
        statement += f"; import {TARGET_PACKAGE} as {SOURCE_PACKAGE}"
    return statement

"""Coverage of PyTorch's public API by the engine, measured against torch itself (the test oracle).

For each namespace (``torch``, ``torch.Tensor``, ``torch.nn`` ...) the public names are PyTorch's
``__all__`` where the module defines one (else its non-underscore attributes, without stdlib
modules it imported); a name is covered when the matching engine object has the attribute. The
reviewed exclusion list (``exclusions.txt``: ``namespace: name-or-glob  # reason``) names what makes
no sense here; every entry carries its reason. ``covered.txt`` freezes the names covered today (the
test fails when one leaves the engine).

Run:
    python tests/engine/api_coverage/report.py              # the per-namespace table
    python tests/engine/api_coverage/report.py --missing    # plus the missing names
    python tests/engine/api_coverage/report.py --json out.json
    python tests/engine/api_coverage/report.py --freeze     # rewrite covered.txt from today's engine
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXCLUSIONS = HERE / "exclusions.txt"
COVERED = HERE / "covered.txt"

# namespace label -> (torch object path, engine object path)
NAMESPACES = {
    "torch": ("torch", "engine"),
    "torch.Tensor": ("torch.Tensor", "engine.Tensor"),
    "torch.nn": ("torch.nn", "engine.nn"),
    "torch.nn.functional": ("torch.nn.functional", "engine.nn.functional"),
    "torch.nn.init": ("torch.nn.init", "engine.nn.init"),
    "torch.nn.utils": ("torch.nn.utils", "engine.nn.utils"),
    "torch.optim": ("torch.optim", "engine.optim"),
    "torch.optim.lr_scheduler": ("torch.optim.lr_scheduler", "engine.optim.lr_scheduler"),
    "torch.linalg": ("torch.linalg", "engine.linalg"),
    "torch.fft": ("torch.fft", "engine.fft"),
    "torch.special": ("torch.special", "engine.special"),
    "torch.distributions": ("torch.distributions", "engine.distributions"),
    "torch.autograd": ("torch.autograd", "engine.autograd"),
    "torch.func": ("torch.func", "engine.func"),
    "torch.utils.data": ("torch.utils.data", "engine.utils.data"),
    "torch.cuda": ("torch.cuda", "engine.cuda"),
}


def resolve(path: str):
    """Import ``a.b.C`` as a module, or a module attribute; None when it does not exist."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


def public_names(obj) -> list[str]:
    """PyTorch's public names of a module (``__all__`` when it has one) or of a class."""
    if isinstance(obj, type):
        return sorted(n for n in dir(obj) if not n.startswith("_"))
    names = set(getattr(obj, "__all__", None) or ())
    if not names:  # no __all__: what the module defines or re-exports from torch's public modules
        for n in dir(obj):
            if not n.startswith("_") and _is_public_value(getattr(obj, n, None), f"{obj.__name__}.{n}"):
                names.add(n)
    else:  # with __all__, public submodules count too (torch.fft, torch.nn.functional ...)
        for n in dir(obj):
            value = getattr(obj, n, None)
            if (not n.startswith("_") and isinstance(value, types.ModuleType)
                    and value.__name__ == f"{obj.__name__}.{n}"):
                names.add(n)
    return sorted(n for n in names if not n.startswith("_") and _has(obj, n))


def _is_public_value(value, qualified: str) -> bool:
    """A submodule of the namespace, or a function/class from a public torch module.

    Skipped: modules it imported (stdlib, other torch packages), typing helpers and other
    non-torch objects, constants and docstring tables (no ``__module__``), and TorchScript's
    annotation helpers (``torch._jit_internal``). Ops bound from ``torch._C`` count.
    """
    if isinstance(value, types.ModuleType):
        return value.__name__ == qualified
    module = getattr(value, "__module__", None)
    if not isinstance(module, str) or isinstance(value, bool | int | float | str | dict | tuple | list):
        return False
    return (module == "torch" or module.startswith("torch.")) and module != "torch._jit_internal"


def _has(obj, name: str) -> bool:
    try:
        getattr(obj, name)
    except Exception:  # a lazily imported name whose import fails is not there
        return False
    return True


@dataclass
class Exclusion:
    namespace: str
    pattern: str
    reason: str
    line: int
    matched: set = field(default_factory=set)


def read_exclusions(path: Path = EXCLUSIONS) -> list[Exclusion]:
    """``namespace: pattern  # reason`` lines (blank lines and ``#`` comment lines skipped)."""
    out = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry, _, reason = line.partition("#")
        namespace, _, pattern = entry.partition(":")
        out.append(Exclusion(namespace.strip(), pattern.strip(), reason.strip(), number))
    return out


def read_covered(path: Path = COVERED) -> dict[str, set]:
    out: dict[str, set] = {}
    if path.exists():
        for line in path.read_text().split():
            namespace, _, name = line.rpartition(".")
            out.setdefault(namespace, set()).add(name)
    return out


@dataclass
class Row:
    namespace: str
    total: int
    covered: list
    excluded: list
    missing: list

    @property
    def percent(self) -> float:
        considered = self.total - len(self.excluded)
        return 100.0 * len(self.covered) / considered if considered else 100.0


def measure(exclusions: list[Exclusion] | None = None) -> list[Row]:
    """One row per namespace: PyTorch's names split into covered, excluded and missing."""
    import engine  # noqa: F401 - the engine's namespaces are resolved below

    exclusions = read_exclusions() if exclusions is None else exclusions
    rows = []
    for label, (torch_path, engine_path) in NAMESPACES.items():
        theirs = resolve(torch_path)
        if theirs is None:
            raise RuntimeError(f"torch has no {torch_path}: is the oracle's version too old?")
        ours = resolve(engine_path)
        covered, excluded, missing = [], [], []
        rules = [e for e in exclusions if e.namespace == label]
        for name in public_names(theirs):
            if ours is not None and _has(ours, name):
                covered.append(name)
                continue
            rule = next((e for e in rules if fnmatch.fnmatchcase(name, e.pattern)), None)
            if rule is not None:
                rule.matched.add(name)
                excluded.append(name)
            else:
                missing.append(name)
        rows.append(Row(label, len(covered) + len(excluded) + len(missing), covered, excluded, missing))
    return rows


def table(rows: list[Row]) -> str:
    lines = [f"{'namespace':<26} {'covered':>8} {'total':>6} {'excluded':>9} {'missing':>8} {'coverage':>9}",
             "-" * 71]
    for r in rows:
        lines.append(f"{r.namespace:<26} {len(r.covered):>8} {r.total:>6} {len(r.excluded):>9} "
                     f"{len(r.missing):>8} {r.percent:>8.1f}%")
    covered = sum(len(r.covered) for r in rows)
    considered = sum(r.total - len(r.excluded) for r in rows)
    lines.append("-" * 71)
    lines.append(f"{'all':<26} {covered:>8} {sum(r.total for r in rows):>6} "
                 f"{sum(len(r.excluded) for r in rows):>9} {considered - covered:>8} "
                 f"{100.0 * covered / considered:>8.1f}%")
    lines.append("coverage = covered / (total - excluded); a name counts when the engine has it")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--missing", action="store_true", help="list the missing names per namespace")
    parser.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    parser.add_argument("--freeze", action="store_true", help="rewrite covered.txt from today's engine")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401 - the oracle
    except ImportError:
        print("torch (the test oracle) is not installed: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    rows = measure()
    print(table(rows))
    if args.missing:
        for r in rows:
            if r.missing:
                print(f"\n{r.namespace} missing ({len(r.missing)}): {' '.join(r.missing)}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {r.namespace: {"total": r.total, "covered": r.covered, "excluded": r.excluded, "missing": r.missing,
                           "percent": round(r.percent, 2)} for r in rows}, indent=1))
    if args.freeze:
        COVERED.write_text("".join(f"{r.namespace}.{n}\n" for r in rows for n in r.covered))
        print(f"\nwrote {COVERED}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[2]))  # the repository root, so `import engine` works from anywhere
    sys.exit(main())

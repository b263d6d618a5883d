"""Running a compat script as PyTorch wrote it, or under the engine with its imports rewritten."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rewrite_imports import rewrite

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

# NOTE: one BLAS/OpenMP thread per process: the tests share small machines, where spinning
# thread pools make tiny models many times slower (torch's most of all).
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Runs a rewritten script with `torch` made unimportable, so nothing can quietly fall back to it.
ENGINE_LAUNCHER = ("import runpy, sys; sys.modules['torch'] = None; script = sys.argv.pop(1); "
                   "runpy.run_path(script, run_name='__main__')")
# The same, with every top-level module call compiled by engine.compile (see compiled_mode.py).
COMPILED_LAUNCHER = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import compiled_mode; compiled_mode.install(); "
                     + ENGINE_LAUNCHER)


@dataclass(frozen=True)
class ScriptRun:
    stdout: str
    stderr: str
    returncode: int

    def last_json_line(self) -> str:
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        assert lines, f"the script printed no JSON result\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return lines[-1]


def script_env() -> dict[str, str]:
    env = {**os.environ, **SINGLE_THREADED}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_script(path: Path, args: list[str], *, backend: str, workdir: Path, timeout: float) -> ScriptRun:
    """Run `path` as PyTorch wrote it ("torch"), with its imports pointed at the engine ("engine"), or so and
    with its models compiled by engine.compile ("engine-compiled")."""
    if backend == "torch":
        command = [sys.executable, str(path), *args]
    elif backend in ("engine", "engine-compiled"):
        rewritten = workdir / path.name
        rewritten.write_text(rewrite(path.read_text()))
        launcher = ENGINE_LAUNCHER if backend == "engine" else COMPILED_LAUNCHER
        command = [sys.executable, "-c", launcher, str(rewritten), *args]
    else:
        raise ValueError(f"unknown backend {backend!r}")
    done = subprocess.run(command, cwd=workdir, env=script_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    result = ScriptRun(done.stdout, done.stderr, done.returncode)
    assert done.returncode == 0, f"{path.name} failed under {backend}:\n{done.stderr[-4000:]}"
    return result

"""The job's environment, built from scratch: nothing of the worker's own environment leaks in.

In particular DATABASE_URL, REDIS_URL, SECRET_KEY and any other platform secret are absent
by construction, not by filtering.
"""

from __future__ import annotations

from pathlib import Path

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


def job_environment(
    *,
    run_id: int,
    attempt: int,
    run_dir: Path,
    events: Path,
    config: Path,
    resume: Path | None,
    python_path: Path,
    gpu_indices: list[int],
    python_bin: Path,
) -> dict[str, str]:
    """Variables a job sees. CUDA_VISIBLE_DEVICES is always set: "" hides every GPU from CPU runs."""
    env = {
        "PATH": f"{python_bin}:{SAFE_PATH}",
        "HOME": str(run_dir),
        "TMPDIR": "/tmp",  # noqa: S108 -- a private tmpfs under bubblewrap
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(python_path),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in gpu_indices),
        "KILN_RUN_ID": str(run_id),
        "KILN_ATTEMPT": str(attempt),
        "KILN_RUN_DIR": str(run_dir),
        "KILN_EVENTS": str(events),
        "KILN_CONFIG": str(config),
    }
    if resume is not None:
        env["KILN_RESUME"] = str(resume)
    return env

"""GPU discovery in a child process, so the worker's own process never initialises CUDA."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

log = logging.getLogger(__name__)

_PROBE = """
import json
try:
    import cupy
    count = cupy.cuda.runtime.getDeviceCount()
except Exception:
    count = 0
gpus = []
for index in range(count):
    props = cupy.cuda.runtime.getDeviceProperties(index)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    gpus.append({"index": index, "name": name, "memory_mb": int(props["totalGlobalMem"]) // 2**20})
print(json.dumps(gpus))
"""


def discover_gpus(timeout: float = 60.0) -> list[dict]:
    """[{index, name, memory_mb}] for each CUDA device CuPy sees; [] without CuPy or CUDA."""
    try:
        result = subprocess.run(  # noqa: S603 -- our own interpreter running a fixed probe
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout, check=False
        )
        return list(json.loads(result.stdout.strip().splitlines()[-1]))
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        log.warning("GPU discovery failed (%s); offering CPU slots only", exc)
        return []


def select_gpus(found: list[dict], wanted: tuple[int, ...] | None) -> list[dict]:
    """The GPUs this worker offers: those KILN_WORKER_GPUS names (all found when None), in its order.

    Jobs are pinned with CUDA_VISIBLE_DEVICES from the offered indices only. An index that was not found is an
    error at start-up, not a silently smaller worker.
    """
    if wanted is None:
        return list(found)
    by_index = {gpu["index"]: gpu for gpu in found}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise ValueError(f"KILN_WORKER_GPUS names GPU(s) {missing} but this machine has "
                         f"{sorted(by_index) or 'no GPUs'}")
    return [by_index[i] for i in wanted]

"""The device check's recipe step: one built-in recipe trained on the GPU, with NVML system metrics sampled beside it.

It runs the recipe as a Kiln job does (``worker.recipes.run_recipe`` under ``engine.track``, here in its local
mode, a temporary run folder) and samples the GPU with the worker's own sampler (``worker.sysmetrics``) when the
platform's dependencies are installed, else with the same NVML readings taken directly. Prints one JSON object.
A run through a live worker needs PostgreSQL/Redis and Django, which the GPU machine may lack; the tests under
tests/worker cover that path on the CPU.

Usage: python tests/gpu/worker_recipe.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

RECIPE = {"model": "gpt", "dataset": "text", "epochs": 1, "hidden_size": 128, "layers": 2, "batch_size": 64}


def _sampler(indices: list[int]):
    """A callable returning {key: value} of sys/ GPU metrics for ``indices``."""
    try:
        from worker.sysmetrics import SystemSampler

        sampler = SystemSampler(lambda: [os.getpid()], indices)
        return "worker.sysmetrics", lambda: {p.key: p.value for p in sampler.sample() if "/gpu" in p.key}
    except Exception:  # no Django here: read NVML as the worker's sampler does
        import pynvml

        pynvml.nvmlInit()

        def read():
            values = {}
            for index in indices:
                h = pynvml.nvmlDeviceGetHandleByIndex(index)
                memory = pynvml.nvmlDeviceGetMemoryInfo(h)
                values.update({f"sys/gpu{index}/util_percent": float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu),
                               f"sys/gpu{index}/memory_mb": memory.used / 2**20,
                               f"sys/gpu{index}/memory_total_mb": memory.total / 2**20,
                               f"sys/gpu{index}/power_watts": pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0,
                               f"sys/gpu{index}/temperature_c": float(
                                   pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))})
            return values

        return "pynvml", read


def main() -> int:
    import engine
    from worker.recipes import run_recipe

    result: dict = {"step": "worker_recipe", "recipe": RECIPE}
    if not engine.cuda.is_available():
        result["skipped"] = "engine.cuda.is_available() is False"
        print(json.dumps(result))
        return 0
    samples: list[dict] = []
    stop = threading.Event()
    try:
        source, read = _sampler([engine.cuda.current_device()])
        result["metrics_source"] = source
    except Exception as exc:  # NVML missing: the recipe still runs, the gap is reported
        read, result["metrics_error"] = None, f"{type(exc).__name__}: {exc}"

    def sample_loop():
        while not stop.wait(0.5):
            samples.append({"t": time.time(), **read()})

    thread = threading.Thread(target=sample_loop, daemon=True) if read else None
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        started = time.perf_counter()
        if thread:
            thread.start()
        try:
            summary = run_recipe(RECIPE, device="cuda")
        finally:
            stop.set()
            if thread:
                thread.join()
        result["seconds"] = round(time.perf_counter() - started, 2)
    result["summary"] = {k: v for k, v in summary.items() if isinstance(v, int | float | str)}
    result["samples"] = len(samples)
    if samples:
        keys = sorted({k for s in samples for k in s if k != "t"})
        result["gpu_metrics"] = {k: {"max": max(s[k] for s in samples if k in s),
                                     "last": samples[-1].get(k)} for k in keys}
    print(json.dumps(result))
    return 0 if samples or "metrics_error" in result else 1


if __name__ == "__main__":
    sys.exit(main())

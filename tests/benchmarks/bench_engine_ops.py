"""Per-op dispatch time of the engine against PyTorch (CPU) on small float32 tensors.

Run: `python tests/benchmarks/bench_engine_ops.py`. Prints one JSON object: for each case the
engine time, the torch time (microseconds, best of several timeit repeats) and their ratio.
Cases: 1k-element add, mul, exp, sum, relu and a 32x32 matmul, each with and without
requires_grad (forward only), and a 10-op forward + backward chain. Torch runs on one thread.
The target is a ratio of at most 2.0.
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

import engine

TARGET_RATIO = 2.0
REPEATS = 25
# NOTE: one torch thread, like the engine's single-threaded NumPy calls at this size: it measures
# dispatch overhead, and spares torch's thread pool the wake-up cost that distorts small matmuls.
TORCH_THREADS = 1


LIBRARIES = (("engine", engine), ("torch", torch))


def _compare(op, inputs: dict, number: int) -> dict:
    """Best time per call (us) of ``op`` for each library; repeats alternate between libraries
    so that both see the same machine load."""
    calls = {name: (lambda lib=lib, t=inputs[name]: op(lib, t)) for name, lib in LIBRARIES}
    for call in calls.values():
        call()  # warm up
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(REPEATS):
        for name, call in calls.items():
            best[name] = min(best[name], timeit.timeit(call, number=number) / number * 1e6)
    return best


def _inputs(lib, requires_grad: bool):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(1000), rng.standard_normal(1000)
    m = rng.standard_normal((32, 32))
    make = lib.tensor
    return {
        "a": make(a, dtype=lib.float32, requires_grad=requires_grad),
        "b": make(b, dtype=lib.float32, requires_grad=requires_grad),
        "m": make(m, dtype=lib.float32, requires_grad=requires_grad),
    }


OPS = {
    "add": lambda lib, t: t["a"] + t["b"],
    "mul": lambda lib, t: t["a"] * t["b"],
    "exp": lambda lib, t: t["a"].exp(),
    "sum": lambda lib, t: t["a"].sum(),
    "relu": lambda lib, t: lib.relu(t["a"]),
    "matmul_32x32": lambda lib, t: t["m"] @ t["m"],
}


def _chain(lib, t):
    a, b = t["a"], t["b"]
    y = a * b
    y = y + 1.0
    y = y.exp()
    y = y * 0.5
    y = y - b
    y = y.tanh()
    y = y * a
    y = y.sigmoid()
    y = y + a
    y = y.sum()
    y.backward()
    a.grad = None
    b.grad = None


def main() -> None:
    torch.set_num_threads(TORCH_THREADS)
    results = {}
    for requires_grad in (False, True):
        inputs = {"engine": _inputs(engine, requires_grad), "torch": _inputs(torch, requires_grad)}
        for name, op in OPS.items():
            key = f"{name}{'_requires_grad' if requires_grad else ''}"
            results[key] = _compare(op, inputs, 2000)
    inputs = {"engine": _inputs(engine, True), "torch": _inputs(torch, True)}
    results["chain_10_ops_forward_backward"] = _compare(_chain, inputs, 200)
    report = {
        name: {"engine_us": round(t["engine"], 2), "torch_us": round(t["torch"], 2),
               "ratio": round(t["engine"] / t["torch"], 2)}
        for name, t in results.items()
    }
    worst = max(r["ratio"] for r in report.values())
    print(json.dumps({"cases": report, "max_ratio": worst, "target_ratio": TARGET_RATIO,
                      "meets_target": worst <= TARGET_RATIO, "torch_version": torch.__version__,
                      "torch_threads": torch.get_num_threads()}, indent=2))


if __name__ == "__main__":
    main()

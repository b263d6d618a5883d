"""Time of one training step (zero_grad, forward, loss, backward, optimizer step): engine vs PyTorch.

Run: `python tests/benchmarks/bench_training_step.py [--repeats 15]`. Prints one JSON object with,
per case, the median milliseconds per step of the engine and of torch and their ratio:
- mlp: 784-1024-1024-10 with ReLU, cross-entropy, Adam, batch 256 (target ratio <= 1.0);
- cnn: conv(3->32, 3x3, pad 1)-ReLU-maxpool2-conv(32->64)-ReLU-maxpool2-linear(4096->10) on
  3x32x32 images, cross-entropy, SGD with momentum 0.9, batch 128 (target ratio <= 1.5).
Both libraries start from the same weights and see the same batch. Measurements alternate between
the libraries (a few steps each, many rounds, medians), so both see the same machine load. Torch
gets as many threads as NumPy's BLAS uses. The same cases run on `cuda` when engine.cuda sees a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

import engine

TARGETS = {"mlp": 1.0, "cnn": 1.5}
STEPS_PER_ROUND = 3


def blas_threads() -> tuple[int, str]:
    """How many threads NumPy's BLAS uses, and how we know."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return int(pools[0]["num_threads"]), f"threadpoolctl ({pools[0].get('internal_api')})"
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name]), f"${name}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores, "cpu count (OpenBLAS's default; threadpoolctl not installed)"


# ----- the two models, built alike in both libraries ----------------------------------------------
def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def cnn(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


CASES = {
    "mlp": {"model": mlp, "input": (256, 784), "optimizer": lambda lib, p: lib.optim.Adam(p, lr=1e-3)},
    "cnn": {"model": cnn, "input": (128, 3, 32, 32),
            "optimizer": lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9)},
}


def build(case: dict, device: str):
    """(step function, synchronize) for each library, with identical weights and batch."""
    torch.manual_seed(0)
    reference = case["model"](torch)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case["input"]).astype(np.float32)
    y = rng.integers(0, 10, case["input"][0])
    steps = {}
    for name, lib in (("engine", engine), ("torch", torch)):
        model = case["model"](lib)
        model.load_state_dict({k: lib.tensor(v.detach().numpy()) for k, v in reference.state_dict().items()})
        model.to(device)
        optimizer = case["optimizer"](lib, model.parameters())
        inputs, targets = lib.tensor(x, device=device), lib.tensor(y, device=device)
        loss_fn = lib.nn.CrossEntropyLoss()

        def step(model=model, optimizer=optimizer, inputs=inputs, targets=targets, loss_fn=loss_fn):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            return loss

        sync = (engine.cuda.synchronize if name == "engine" else torch.cuda.synchronize) if device != "cpu" else None
        steps[name] = (step, sync)
    return steps


def measure(case: dict, device: str, repeats: int) -> dict:
    steps = build(case, device)
    losses = {}
    for name, (step, _sync) in steps.items():  # warm up: first-step allocations, optimizer state
        for _ in range(2):
            losses[name] = float(step().item())
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(repeats):
        order = list(steps) if round_ % 2 == 0 else list(reversed(steps))  # neither always goes first
        for name in order:
            step, sync = steps[name]
            started = time.perf_counter()
            for _ in range(STEPS_PER_ROUND):
                step()
            if sync is not None:
                sync()
            samples[name].append((time.perf_counter() - started) / STEPS_PER_ROUND * 1e3)
    engine_ms, torch_ms = (statistics.median(samples[n]) for n in ("engine", "torch"))
    return {"engine_ms": round(engine_ms, 3), "torch_ms": round(torch_ms, 3), "ratio": round(engine_ms / torch_ms, 3),
            "engine_ms_min": round(min(samples["engine"]), 3), "torch_ms_min": round(min(samples["torch"]), 3),
            "first_loss": {n: round(v, 4) for n, v in losses.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="alternating rounds per case")
    args = parser.parse_args()
    threads, source = blas_threads()
    torch.set_num_threads(threads)
    result: dict = {
        "benchmark": "training_step", "unit": "ms per step (median)", "repeats": args.repeats,
        "steps_per_round": STEPS_PER_ROUND, "threads": {"numpy_blas": threads, "torch": torch.get_num_threads(),
                                                         "source": source},
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__},
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "cpu": {},
    }
    for name, case in CASES.items():
        result["cpu"][name] = {**measure(case, "cpu", args.repeats), "target_ratio": TARGETS[name]}
        result["cpu"][name]["meets_target"] = result["cpu"][name]["ratio"] <= TARGETS[name]
    if not engine.cuda.is_available():
        result["cuda"] = {"skipped": "engine.cuda.is_available() is False (no CuPy or no CUDA device)"}
    elif not torch.cuda.is_available():
        result["cuda"] = {name: _engine_only(case, args.repeats) for name, case in CASES.items()}
        result["cuda"]["note"] = "torch has no CUDA here (CPU build): engine times only"
    else:
        result["cuda"] = {name: measure(case, "cuda", args.repeats) for name, case in CASES.items()}
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result))


def _engine_only(case: dict, repeats: int) -> dict:
    step, sync = build(case, "cuda")["engine"]
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(STEPS_PER_ROUND):
            step()
        sync()
        times.append((time.perf_counter() - started) / STEPS_PER_ROUND * 1e3)
    return {"engine_ms": round(statistics.median(times), 3), "engine_ms_min": round(min(times), 3)}


if __name__ == "__main__":
    main()

"""Latency of an int8 dynamic-quantized Linear against the float Linear, engine and torch (CPU).

Run: `python tests/benchmarks/bench_quantized_linear.py`. Prints one JSON object: for a 1024x1024
Linear at batch 1 and 64, the best time per call (microseconds) of the engine's float Linear, the
engine's dynamic int8 Linear (engine.ao.quantization.quantize_dynamic), torch's float Linear and
torch's dynamic int8 Linear (fbgemm), with ratios: int8/float within each library (below 1 means
int8 is faster) and engine/torch for the int8 module. Torch gets as many threads as NumPy's BLAS.
The rounds interleave the four variants, so a change of load on the machine hits them alike.

NOTE: NumPy has no int8 GEMM; the engine's int8 product is a float32 BLAS GEMM over the integer
values (exact: every partial sum stays below 2**24), so it costs what the float GEMM costs plus the
activation quantization: the ratio sits near 1 (torch's fbgemm has real int8 kernels).
"""

from __future__ import annotations

import json
import os
import sys
import timeit
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

import engine
from engine.ao.quantization import quantize_dynamic

FEATURES = 1024
BATCHES = (1, 64)
REPEATS = 15


def _best_us(variants: dict, number: int) -> dict:
    """Best time per call of each variant; rounds interleave them, so a load change hits all alike."""
    best = dict.fromkeys(variants, float("inf"))
    for fn in variants.values():
        fn()
    for _ in range(REPEATS):
        for name, fn in variants.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
    return best


def _models():
    engine.manual_seed(0)
    e_float = engine.nn.Sequential(engine.nn.Linear(FEATURES, FEATURES)).eval()
    t_float = torch.nn.Sequential(torch.nn.Linear(FEATURES, FEATURES)).eval()
    t_float.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in e_float.state_dict().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_int8 = torch.ao.quantization.quantize_dynamic(t_float, {torch.nn.Linear}, dtype=torch.qint8)
    e_int8 = quantize_dynamic(e_float, {engine.nn.Linear}, dtype=engine.qint8)
    return e_float, e_int8, t_float, t_int8


def main() -> None:
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))))
    e_float, e_int8, t_float, t_int8 = _models()
    report: dict = {"benchmark": "quantized_linear", "features": FEATURES, "unit": "us", "cases": {}}
    for batch in BATCHES:
        x = np.random.default_rng(batch).standard_normal((batch, FEATURES)).astype(np.float32)
        ex, tx = engine.tensor(x), torch.from_numpy(x)
        number = 50 if batch == 1 else 5
        with engine.no_grad(), torch.no_grad():
            times = _best_us({"engine_float": lambda ex=ex: e_float(ex), "engine_int8": lambda ex=ex: e_int8(ex),
                              "torch_float": lambda tx=tx: t_float(tx), "torch_int8": lambda tx=tx: t_int8(tx)},
                             number)
            err = float(np.abs(e_int8(ex).numpy() - t_int8(tx).numpy()).max())
        report["cases"][f"batch_{batch}"] = {
            **{k: round(v, 1) for k, v in times.items()},
            "engine_int8_over_float": round(times["engine_int8"] / times["engine_float"], 2),
            "torch_int8_over_float": round(times["torch_int8"] / times["torch_float"], 2),
            "engine_int8_over_torch_int8": round(times["engine_int8"] / times["torch_int8"], 2),
            "max_abs_diff_vs_torch_int8": err,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

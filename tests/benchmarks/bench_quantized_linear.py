"""Latency of an int8 dynamic-quantized Linear against the float Linear, engine and torch (CPU).

Run: `python tests/benchmarks/bench_quantized_linear.py`. Prints one JSON object: for a 1024x1024
Linear at batch 1 and 64, the best time per call (microseconds) of the engine's float Linear, the
engine's dynamic int8 Linear (engine.ao.quantization.quantize_dynamic), torch's float Linear and
torch's dynamic int8 Linear (fbgemm), with ratios: int8/float within each library (below 1 means
int8 is faster) and engine/torch for the int8 module. Torch gets as many threads as NumPy's BLAS.
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


def _best_us(fn, number: int) -> float:
    fn()
    return min(timeit.repeat(fn, number=number, repeat=REPEATS)) / number * 1e6


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
        number = 200 if batch == 1 else 20
        with engine.no_grad(), torch.no_grad():
            times = {"engine_float": _best_us(lambda ex=ex: e_float(ex), number),
                     "engine_int8": _best_us(lambda ex=ex: e_int8(ex), number),
                     "torch_float": _best_us(lambda tx=tx: t_float(tx), number),
                     "torch_int8": _best_us(lambda tx=tx: t_int8(tx), number)}
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

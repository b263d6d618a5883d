"""Inference time of the digits CNN: onnxruntime against the engine's eager forward, float and int8.

Run: `python tests/benchmarks/bench_onnx_inference.py`. Prints one JSON object: for the CNN of
examples/cnn_digits.py (width 16, eval mode) at batch 1 and 64, the best time per forward
(microseconds) of the engine eager, onnxruntime on its ONNX export (``engine.onnx.export``), the
engine's statically quantized model (fused conv-bn-relu, x86 qconfig, calibrated on 256 digits)
and onnxruntime on its QDQ export, with ratios (below 1 means the first is faster): onnxruntime /
engine for float and int8, and int8 / float within each. The timings interleave (each round
times every variant once) so a load change on the machine hits all of them alike.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import onnxruntime as ort

import engine
from engine.ao import quantization as tq
from engine.datasets import Digits

ROOT = Path(__file__).resolve().parents[2]
BATCHES = (1, 64)
ROUNDS = 15


def _example_cnn():
    spec = importlib.util.spec_from_file_location("cnn_digits", ROOT / "examples" / "cnn_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CNN(16, 0.1).eval()


class Quantizable(engine.nn.Module):
    """The example CNN between QuantStub and DeQuantStub, its conv-bn-relu blocks fused."""

    def __init__(self, cnn):
        super().__init__()
        self.quant, self.cnn, self.dequant = tq.QuantStub(), cnn, tq.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.cnn(self.quant(x)))


def _int8(cnn, calibration):
    import copy

    model = Quantizable(copy.deepcopy(cnn)).eval()
    blocks = [[f"cnn.features.{i}.0", f"cnn.features.{i}.1", f"cnn.features.{i}.2"] for i in (0, 1, 3, 4)]
    tq.fuse_modules(model, blocks, inplace=True)
    model.qconfig = tq.get_default_qconfig("x86")
    tq.prepare(model, inplace=True)
    with engine.no_grad():
        model(calibration)
    return tq.convert(model, inplace=True)


def _session(model, example, threads: int):
    buffer = io.BytesIO()
    engine.onnx.export(model, (example,), buffer, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def _variants(cnn, int8, sessions, x, feed) -> dict:
    return {"engine_float": lambda: cnn(x), "onnxruntime_float": lambda: sessions["float"].run(None, feed),
            "engine_int8": lambda: int8(x), "onnxruntime_int8": lambda: sessions["int8"].run(None, feed)}


def main() -> None:
    engine.manual_seed(0)
    threads = max(1, int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    data = Digits(train=False).data
    cnn = _example_cnn()
    int8 = _int8(cnn, Digits(train=True).data[:256])
    sessions = {"float": _session(cnn, data[:2], threads), "int8": _session(int8, data[:2], threads)}
    report: dict = {"benchmark": "onnx_inference", "model": "examples/cnn_digits.py CNN(width=16)", "unit": "us",
                    "onnxruntime": ort.__version__, "threads": threads, "cases": {}}
    for batch in BATCHES:
        x = data[:batch]
        feed = {"x": x.numpy()}
        number = 50 if batch == 1 else 5
        variants = _variants(cnn, int8, sessions, x, feed)
        best = dict.fromkeys(variants, float("inf"))
        with engine.no_grad():
            for fn in variants.values():
                fn()
            for _ in range(ROUNDS):
                for name, fn in variants.items():
                    best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
        report["cases"][f"batch_{batch}"] = {
            **{k: round(v, 1) for k, v in best.items()},
            "onnxruntime_over_engine_float": round(best["onnxruntime_float"] / best["engine_float"], 3),
            "onnxruntime_over_engine_int8": round(best["onnxruntime_int8"] / best["engine_int8"], 3),
            "engine_int8_over_float": round(best["engine_int8"] / best["engine_float"], 3),
            "onnxruntime_int8_over_float": round(best["onnxruntime_int8"] / best["onnxruntime_float"], 3),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()

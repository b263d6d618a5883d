"""Quantized models trace, save/load and export to ONNX (QuantizeLinear + MatMulInteger, QDQ).

onnxruntime's predictions agree with the engine's quantized model; a traced quantized model runs at
another batch size without its classes.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.ao.quantization import quantize_dynamic

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True)
        self.head = nn.Linear(64, 10)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out[:, -1])


def _mlp():
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def _export(model, example, axes):
    buffer = io.BytesIO()
    engine.onnx.export(model, (example,), buffer, input_names=["x"], output_names=["y"],
                       dynamic_axes={"x": axes, "y": {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    return ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"]), [n.op_type for n in
                                                                                         proto.graph.node]


def test_dynamic_mlp_exports_as_matmulinteger_with_the_same_predictions():
    engine.manual_seed(0)
    q = quantize_dynamic(_mlp().eval(), {nn.Linear}, dtype=engine.qint8)
    session, kinds = _export(q, engine.randn(4, 64), {0: "batch"})
    assert kinds.count("MatMulInteger") == 3 and kinds.count("QuantizeLinear") == 3
    assert "Gemm" not in kinds and "MatMul" not in kinds
    x = engine.randn(2000, 64)
    (got,) = session.run(None, {"x": x.numpy()})
    with engine.no_grad():
        want = q(x).numpy()
    # NOTE: the same 7-bit activation qparams (fbgemm's reduce_range) and int32 products; only the
    # rounding of x / scale may differ (onnxruntime divides, the engine multiplies by 1 / scale).
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.995
    np.testing.assert_allclose(got, want, atol=5e-3)


def test_dynamic_lstm_exports_as_the_lstm_operator_over_dequantized_weights():
    engine.manual_seed(0)
    model = LSTMClassifier().eval()
    q = quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=engine.qint8)
    session, kinds = _export(q, engine.randint(0, 50, (4, 12)), {0: "batch", 1: "time"})
    assert kinds.count("LSTM") == 2 and "DequantizeLinear" in kinds and "MatMulInteger" in kinds
    for batch, length in ((300, 12), (200, 7)):
        x = engine.randint(0, 50, (batch, length))
        (got,) = session.run(None, {"x": x.numpy()})
        with engine.no_grad():
            want, float_want = q(x).numpy(), model(x).numpy()
        assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.97
        assert (got.argmax(-1) == float_want.argmax(-1)).mean() >= 0.97


def test_a_traced_quantized_model_runs_at_another_batch_in_a_fresh_process(tmp_path):
    engine.manual_seed(0)
    q = quantize_dynamic(LSTMClassifier().eval(), {nn.Linear, nn.LSTM}, dtype=engine.qint8)
    traced = engine.jit.trace(q, (engine.randint(0, 50, (4, 12)),))
    names = [n.op_name for n in traced.graph.nodes]
    assert "quantized.lstm_dynamic" in names and "quantized.linear_dynamic" in names
    engine.jit.save(traced, tmp_path / "q.pt")
    x = engine.randint(0, 50, (9, 5))
    engine.save({"x": x}, tmp_path / "x.safetensors")
    script = textwrap.dedent("""
        import engine
        m = engine.jit.load("q.pt")
        with engine.no_grad():
            engine.save({"y": m(engine.load("x.safetensors")["x"])}, "y.safetensors")
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    with engine.no_grad():
        assert engine.equal(engine.load(tmp_path / "y.safetensors")["y"], q(x))


def test_dynamic_bidirectional_gru_exports_as_the_gru_operator():
    engine.manual_seed(0)
    model = nn.GRU(8, 16, num_layers=2, bidirectional=True).eval()
    q = quantize_dynamic(model, {nn.GRU}, dtype=engine.qint8)
    buffer = io.BytesIO()
    engine.onnx.export(q, (engine.randn(5, 3, 8),), buffer, input_names=["x"],
                       dynamic_axes={"x": {0: "time", 1: "batch"}})
    kinds = [n.op_type for n in onnx.load_from_string(buffer.getvalue()).graph.node]
    assert kinds.count("GRU") == 2 and kinds.count("DequantizeLinear") == 8
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = engine.randn(9, 4, 8)
    out, h_n = session.run(None, {"x": x.numpy()})
    with engine.no_grad():
        want, want_h = q(x)
    # NOTE: onnxruntime runs float activations over the dequantized weights; the engine quantizes them too.
    np.testing.assert_allclose(out, want.numpy(), atol=2e-2)
    np.testing.assert_allclose(h_n, want_h.numpy(), atol=2e-2)

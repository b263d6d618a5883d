"""engine.backends.quantized.engine: a checked setting that decides the dynamic activation range."""

from __future__ import annotations

import io

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.ao.quantization import quantize_dynamic

backend = engine.backends.quantized


@pytest.fixture
def restore_engine():
    before = backend.engine
    yield
    backend.engine = before


def test_default_and_supported_engines_as_torch(restore_engine):
    assert backend.engine == "x86"
    assert {"x86", "fbgemm", "qnnpack"} <= set(backend.supported_engines)
    for name in ("fbgemm", "qnnpack", "x86"):
        backend.engine = name
        assert backend.engine == name
    with pytest.raises(RuntimeError, match="quantized engine tpu is not supported"):
        backend.engine = "tpu"
    assert backend.engine == "x86"


def test_qnnpack_quantizes_activations_over_8_bits_and_exports_dynamicquantizelinear(restore_engine):
    ort = pytest.importorskip("onnxruntime")
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 5)).eval()
    q = quantize_dynamic(model, {nn.Linear}, dtype=engine.qint8)
    x = engine.randn(256, 32)
    with engine.no_grad():
        float_out, seven_bits = model(x).numpy(), q(x).numpy()
        backend.engine = "qnnpack"
        eight_bits = q(x).numpy()
    assert np.abs(eight_bits - float_out).mean() < np.abs(seven_bits - float_out).mean()
    buffer = io.BytesIO()
    engine.onnx.export(q, (x[:4],), buffer, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    import onnx

    assert "DynamicQuantizeLinear" in [n.op_type for n in onnx.load_from_string(buffer.getvalue()).graph.node]
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], eight_bits, atol=5e-3)


def test_the_none_engine_has_no_quantized_kernels(restore_engine):
    q = quantize_dynamic(nn.Linear(4, 2), {nn.Linear})
    backend.engine = "none"
    with pytest.raises(RuntimeError, match="NoQEngine"):
        q(engine.randn(3, 4))

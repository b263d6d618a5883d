"""engine.onnx.export: onnx.checker passes and onnxruntime equals the engine at two batch sizes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from jit_models import cnn, gpt_block, lstm_classifier, mlp

import engine

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _session(model, example, **kwargs):
    buffer = io.BytesIO()
    engine.onnx.export(model, (example,), buffer, input_names=["x"], output_names=["y"],
                       dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **kwargs)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 17
    return ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"]), proto


def _tokens(batch, *shape):
    return engine.randint(0, 20, (batch, *shape))


@pytest.mark.parametrize("build, shape, draw", [
    (lambda: mlp(engine.nn), (10,), engine.randn), (lambda: cnn(engine.nn), (3, 8, 8), engine.randn),
    (lambda: gpt_block(engine), (5, 16), engine.randn), (lambda: lstm_classifier(engine), (6,), _tokens),
], ids=["mlp", "cnn", "gpt", "lstm"])
def test_onnxruntime_matches_the_engine_at_two_batch_sizes(build, shape, draw):
    engine.manual_seed(0)
    model = build().eval()
    session, proto = _session(model, draw(4, *shape))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for batch in (4, 7):
        x = draw(batch, *shape)
        (got,) = session.run(None, {"x": x.numpy()})
        with engine.no_grad():
            np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_layers_without_a_lowering_of_their_own_export_as_the_ops_they_call():
    nn = engine.nn

    class Mixer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
            self.conv = nn.Conv1d(5, 6, 3, padding=1)
            self.group, self.rms = nn.GroupNorm(2, 6), nn.RMSNorm(16)

        def forward(self, x):
            y = self.rms(self.attn(x, x, x, need_weights=False)[0] + x)
            return self.group(self.conv(y)).mean(dim=-1)

    engine.manual_seed(0)
    model = Mixer().eval()
    session, _ = _session(model, engine.randn(4, 5, 16))
    for batch in (4, 7):
        x = engine.randn(batch, 5, 16)
        (got,) = session.run(None, {"x": x.numpy()})
        with engine.no_grad():
            np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_activations_pooling_and_transposed_convolution():
    nn = engine.nn
    model = nn.Sequential(nn.Conv1d(3, 4, 3), nn.LeakyReLU(0.2), nn.MaxPool1d(2), nn.ConvTranspose1d(4, 3, 3, stride=2),
                          nn.Hardtanh(-0.5, 0.5), nn.AvgPool1d(2), nn.ELU(), nn.Softplus(beta=2.0), nn.ReLU6(),
                          nn.Hardsigmoid()).eval()
    session, _ = _session(model, engine.randn(4, 3, 12))
    for batch in (4, 7):
        x = engine.randn(batch, 3, 12) * 3
        (got,) = session.run(None, {"x": x.numpy()})
        with engine.no_grad():
            np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_the_weights_are_initializers_named_as_in_the_state_dict(tmp_path):
    model = mlp(engine.nn).eval()
    engine.onnx.export(model, engine.randn(2, 10), tmp_path / "m.onnx")
    proto = onnx.load(tmp_path / "m.onnx")
    assert {"0.weight", "0.bias", "4.weight"} <= {i.name for i in proto.graph.initializer}
    names = [n.op_type for n in proto.graph.node]
    assert names.count("Gemm") == 3 and "Relu" in names


def test_an_op_without_a_lowering_names_the_op_and_the_module():
    class Head(engine.nn.Module):
        def forward(self, x):
            return x.cumprod(1)

    model = engine.nn.Sequential(engine.nn.Linear(3, 3), Head())
    with pytest.raises(engine.onnx.UnsupportedOperatorError, match=r"'engine\.cumprod'.*in module '1' \(Head\)"):
        engine.onnx.export(model, engine.randn(2, 3), io.BytesIO())
    with pytest.raises(engine.onnx.UnsupportedOperatorError, match="training mode"):
        engine.onnx.export(engine.nn.Dropout(0.5).train(), engine.randn(2, 3), io.BytesIO())

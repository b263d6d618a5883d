"""Dynamic quantization: outputs close to torch's, argmax agreement with float, small saved state."""

import io

import numpy as np
import pytest
from torch_oracle import require_torch

import engine
import engine.nn as nn
from engine.ao.quantization import quantize_dynamic

torch = require_torch()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _copy_to_torch(model, tmodel):
    tmodel.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in model.state_dict().items()})
    return tmodel


def test_dynamic_linear_close_to_torch():
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32))
    tmodel = _copy_to_torch(model, torch.nn.Sequential(torch.nn.Linear(64, 32)))
    q = quantize_dynamic(model, {nn.Linear}, dtype=engine.qint8)
    tq = torch.ao.quantization.quantize_dynamic(tmodel, {torch.nn.Linear}, dtype=torch.qint8)
    assert isinstance(q[0], engine.ao.nn.quantized.dynamic.Linear)
    w, tw = q[0].weight(), tq[0].weight()
    assert np.array_equal(w.int_repr().numpy(), tw.int_repr().numpy()) and w.q_scale() == tw.q_scale()
    x = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    out, ref = q(engine.tensor(x)).numpy(), tq(torch.from_numpy(x)).detach().numpy()
    # NOTE: same int8 weight and activation qparams; only float rounding order differs.
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def _agreement(model, q, x):
    with engine.no_grad():
        return (model(x).argmax(-1) == q(x).argmax(-1)).float().mean().item()


def _size(state) -> int:
    buffer = io.BytesIO()
    engine.save(state, buffer)
    return len(buffer.getvalue())


def test_quantized_mlp_agrees_and_is_small(tmp_path):
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    q = quantize_dynamic(model, {nn.Linear}, dtype=engine.qint8)
    x = engine.randn(2000, 64)
    assert _agreement(model, q, x) >= 0.97
    assert _size(q.state_dict()) <= 0.30 * _size(model.state_dict())
    engine.save(q.state_dict(), tmp_path / "q.safetensors")
    fresh = quantize_dynamic(model, {nn.Linear})
    fresh[0].set_weight_bias(engine.quantize_per_tensor(engine.zeros(256, 64), 1.0, 0, engine.qint8),
                             engine.zeros(256))
    fresh.load_state_dict(engine.load(tmp_path / "q.safetensors"))
    assert engine.equal(fresh(x), q(x))


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.lstm = nn.LSTM(32, 128, num_layers=2, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out[:, -1])


def test_quantized_lstm_agrees_and_is_small():
    engine.manual_seed(0)
    model = LSTMClassifier().eval()
    q = quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=engine.qint8)
    assert isinstance(q.lstm, engine.ao.nn.quantized.dynamic.LSTM)
    x = engine.randint(0, 50, (500, 12))
    assert _agreement(model, q, x) >= 0.97
    float_lstm = {k: v for k, v in model.state_dict().items() if not k.startswith("embed")}
    quant_lstm = {k: v for k, v in q.state_dict().items() if not k.startswith("embed")}
    assert _size(quant_lstm) <= 0.30 * _size(float_lstm)


def test_dynamic_lstm_and_gru_close_to_float():
    # NOTE: torch 2.13's quantize_dynamic leaves nn.LSTM / nn.GRU in float, so the oracle is the float
    # module; the int8 error of a 16-unit layer stays below 1e-2.
    engine.manual_seed(1)
    for cls in (nn.LSTM, nn.GRU):
        model = cls(8, 16, num_layers=2, batch_first=True, bidirectional=True)
        q = quantize_dynamic(model, {cls})
        assert type(q).__name__ == cls.__name__ and type(q).__module__.startswith("engine.ao.nn.quantized.dynamic")
        x = engine.randn(4, 5, 8)
        out, h = q(x)
        ref, ref_h = model(x)
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-2)
        if cls is nn.LSTM:
            h, ref_h = h[1], ref_h[1]
        np.testing.assert_allclose(h.numpy(), ref_h.detach().numpy(), atol=1e-2)
        assert tuple(out.shape) == (4, 5, 32)


def test_unsupported_dtype_and_type_raise():
    with pytest.raises(NotImplementedError, match="qint8"):
        quantize_dynamic(nn.Linear(2, 2), {nn.Linear}, dtype=engine.float16)
    with pytest.raises(NotImplementedError, match="Conv2d"):
        quantize_dynamic(nn.Conv2d(1, 1, 1), {nn.Conv2d})

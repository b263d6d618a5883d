"""Statically quantized Linear / Conv2d / add: the int8 math equals torch's quantized CPU kernels."""

import numpy as np
import pytest
from torch_oracle import require_torch

import engine
import engine.ao.nn.quantized as nnq
from engine.ao.nn.intrinsic import quantized as nniq

torch = require_torch()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
rng = np.random.default_rng(0)


def _qpair(x, scale, zp):
    return (engine.quantize_per_tensor(engine.tensor(x), scale, zp, engine.quint8),
            torch.quantize_per_tensor(torch.from_numpy(x), scale, zp, torch.quint8))


def _weights(shape, per_channel: bool):
    w = (rng.standard_normal(shape) * 0.2).astype(np.float32)
    if not per_channel:
        s = float(np.abs(w).max() / 127.5)
        return (engine.quantize_per_tensor(engine.tensor(w), s, 0, engine.qint8),
                torch.quantize_per_tensor(torch.from_numpy(w), s, 0, torch.qint8))
    s = np.abs(w.reshape(shape[0], -1)).max(1) / 127.5
    z = np.zeros(shape[0], np.int64)
    return (engine.quantize_per_channel(engine.tensor(w), engine.tensor(s), engine.tensor(z), 0, engine.qint8),
            torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(s), torch.from_numpy(z), 0, torch.qint8))


def _close(out, ref):
    a, b = out.int_repr().numpy().astype(int), ref.int_repr().numpy().astype(int)
    assert a.shape == b.shape
    assert np.array_equal(a, b)
    assert out.q_scale() == ref.q_scale() and out.q_zero_point() == ref.q_zero_point()


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("relu", [False, True])
def test_quantized_linear_matches_torch(per_channel, relu):
    w, tw = _weights((24, 40), per_channel)
    b = rng.standard_normal(24).astype(np.float32)
    mine = (nniq.LinearReLU if relu else nnq.Linear)(40, 24)
    ref = (torch.ao.nn.intrinsic.quantized.LinearReLU if relu else torch.ao.nn.quantized.Linear)(40, 24)
    mine.set_weight_bias(w, engine.tensor(b))
    ref.set_weight_bias(tw, torch.from_numpy(b))
    mine.scale, mine.zero_point, ref.scale, ref.zero_point = 0.05, 60, 0.05, 60
    x, tx = _qpair(rng.standard_normal((16, 40)).astype(np.float32), 0.03, 70)
    _close(mine(x), ref(tx))


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize(("stride", "padding", "relu"), [(1, 1, False), (2, 0, True), (1, 2, True)])
def test_quantized_conv2d_matches_torch(per_channel, stride, padding, relu):
    w, tw = _weights((6, 3, 3, 3), per_channel)
    b = rng.standard_normal(6).astype(np.float32)
    mine = (nniq.ConvReLU2d if relu else nnq.Conv2d)(3, 6, 3, stride=stride, padding=padding)
    ref = (torch.ao.nn.intrinsic.quantized.ConvReLU2d if relu else torch.ao.nn.quantized.Conv2d)(
        3, 6, 3, stride=stride, padding=padding)
    mine.set_weight_bias(w, engine.tensor(b))
    ref.set_weight_bias(tw, torch.from_numpy(b))
    mine.scale, mine.zero_point, ref.scale, ref.zero_point = 0.04, 50, 0.04, 50
    x, tx = _qpair(rng.standard_normal((2, 3, 9, 9)).astype(np.float32), 0.03, 70)
    _close(mine(x), ref(tx))


def test_qfunctional_add_and_relu_match_torch():
    a, ta = _qpair(rng.standard_normal((8, 8)).astype(np.float32), 0.02, 100)
    b, tb = _qpair(rng.standard_normal((8, 8)).astype(np.float32), 0.03, 90)
    mine, ref = nnq.QFunctional(), torch.ao.nn.quantized.QFunctional()
    mine.scale, mine.zero_point, ref.scale, ref.zero_point = 0.05, 120, 0.05, 120
    _close(mine.add(a, b), ref.add(ta, tb))
    _close(mine.add_relu(a, b), ref.add_relu(ta, tb))
    _close(nnq.ReLU()(a), torch.nn.ReLU()(ta))


def test_quantized_module_needs_quantized_input():
    with pytest.raises(RuntimeError, match="QuantStub"):
        nnq.Linear(4, 2)(engine.randn(3, 4))

"""Quantized tensors: per-tensor / per-channel quantization equals torch's bit for bit."""

import numpy as np
import pytest
from torch_oracle import require_torch

import engine

torch = require_torch()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
PAIRS = [(engine.qint8, torch.qint8), (engine.quint8, torch.quint8), (engine.qint32, torch.qint32)]


def _data():
    x = (np.random.default_rng(0).standard_normal((32, 17)) * 3).astype(np.float32)
    halves = ((np.arange(-100, 100) + 0.5) * np.float32(0.05)).astype(np.float32)
    return x, halves


@pytest.mark.parametrize(("ed", "td"), PAIRS)
def test_quantize_per_tensor_matches_torch(ed, td):
    for x in _data():
        q = engine.quantize_per_tensor(engine.tensor(x), 0.05, 7, ed)
        ref = torch.quantize_per_tensor(torch.from_numpy(x), 0.05, 7, td)
        assert np.array_equal(q.int_repr().numpy(), ref.int_repr().numpy())
        assert np.array_equal(q.dequantize().numpy(), ref.dequantize().numpy())
        assert q.q_scale() == ref.q_scale() and q.q_zero_point() == ref.q_zero_point()
        assert q.is_quantized and q.dtype is ed and q.qscheme() is engine.per_tensor_affine


@pytest.mark.parametrize(("ed", "td"), PAIRS)
def test_quantize_per_channel_matches_torch(ed, td):
    x, _ = _data()
    rng = np.random.default_rng(1)
    scales, zps = rng.uniform(0.01, 0.1, 17), rng.integers(0, 20, 17)
    q = engine.quantize_per_channel(engine.tensor(x), engine.tensor(scales), engine.tensor(zps), 1, ed)
    ref = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scales), torch.from_numpy(zps), 1, td)
    assert np.array_equal(q.int_repr().numpy(), ref.int_repr().numpy())
    assert np.array_equal(q.dequantize().numpy(), ref.dequantize().numpy())
    assert np.array_equal(q.q_per_channel_scales().numpy(), ref.q_per_channel_scales().numpy())
    assert q.q_per_channel_zero_points().tolist() == ref.q_per_channel_zero_points().tolist()
    assert q.q_per_channel_axis() == 1 and q.qscheme() is engine.per_channel_affine


def test_float_tensor_is_not_quantized_and_ops_refuse():
    x = engine.randn(4, 4)
    assert not x.is_quantized and x.dequantize() is x
    q = engine.quantize_per_tensor(x, 0.1, 0, engine.qint8)
    with pytest.raises(NotImplementedError, match="dequantize"):
        q + q
    assert q.reshape(2, 8).q_scale() == 0.1 and q.flatten().shape == (16,)
    with pytest.raises(RuntimeError, match="zero_point"):
        engine.quantize_per_tensor(x, 0.1, 300, engine.qint8)


def test_save_load_quantized_tensor(tmp_path):
    x = engine.randn(6, 5)
    q1 = engine.quantize_per_tensor(x, 0.02, 3, engine.quint8)
    q2 = engine.quantize_per_channel(x, engine.rand(6) + 0.01, engine.zeros(6, dtype=engine.int64), 0, engine.qint8)
    engine.save({"a": q1, "b": q2}, tmp_path / "q.safetensors")
    back = engine.load(tmp_path / "q.safetensors")
    for before, after in zip((q1, q2), (back["a"], back["b"]), strict=True):
        assert after.is_quantized and after.dtype is before.dtype
        assert np.array_equal(after.int_repr().numpy(), before.int_repr().numpy())
        assert np.array_equal(after.dequantize().numpy(), before.dequantize().numpy())

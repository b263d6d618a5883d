"""Quantized tensors and modules on device ``cuda`` (real CuPy, or tests/fake_cupy in CI) equal the CPU results."""

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.ao import quantization as tq

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend")]


def test_quantize_on_cuda_equals_cpu():
    x = engine.randn(16, 8)
    q_cpu = engine.quantize_per_tensor(x, 0.02, 10, engine.quint8)
    q_gpu = engine.quantize_per_tensor(x.cuda(), 0.02, 10, engine.quint8)
    assert q_gpu.device.type == "cuda" and q_gpu.is_quantized
    assert np.array_equal(q_gpu.int_repr().cpu().numpy(), q_cpu.int_repr().numpy())
    assert np.array_equal(q_gpu.dequantize().cpu().numpy(), q_cpu.dequantize().numpy())
    assert np.array_equal(q_gpu.cpu().int_repr().numpy(), q_cpu.int_repr().numpy())


def test_dynamic_linear_and_lstm_on_cuda_equal_cpu():
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    q = tq.quantize_dynamic(model, {nn.Linear})
    x = engine.randn(8, 32)
    expected = q(x).numpy()
    q.cuda()
    got = q(x.cuda())
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-6, atol=1e-6)
    lstm = tq.quantize_dynamic(nn.LSTM(6, 12, batch_first=True), {nn.LSTM})
    seq = engine.randn(2, 5, 6)
    expected = lstm(seq)[0].numpy()
    np.testing.assert_allclose(lstm.cuda()(seq.cuda())[0].cpu().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_static_conv_and_linear_on_cuda_equal_cpu():
    model = nn.Sequential(tq.QuantStub(), nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 5), tq.DeQuantStub()).eval()
    model.qconfig = tq.get_default_qconfig("x86")
    prepared = tq.prepare(model)
    x = engine.randn(8, 2, 6, 6)
    prepared(x)
    q = tq.convert(prepared)
    expected = q(x).numpy()
    np.testing.assert_array_equal(q.cuda()(x.cuda()).cpu().numpy(), expected)

"""Eager-mode static PTQ: fuse_modules, prepare / calibrate / convert, a quantized digits CNN."""

import io

import numpy as np
import pytest
from torch_oracle import require_torch

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine.ao import quantization as tq
from engine.ao.nn import intrinsic as nni
from engine.datasets import Digits

torch = require_torch()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _block(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class CNN(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.quant = tq.QuantStub()
        self.features = nn.Sequential(_block(1, width), nn.MaxPool2d(2), _block(width, 2 * width), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(2 * width * 4, 64), nn.ReLU(),
                                        nn.Linear(64, 10))
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        return self.dequant(self.classifier(self.features(self.quant(x))))


def _accuracy(model, data, targets) -> float:
    with engine.no_grad():
        return (model(data).argmax(1) == targets).float().mean().item()


@pytest.fixture(scope="module")
def trained():
    engine.manual_seed(0)
    train, test = Digits(train=True), Digits(train=False)
    model = CNN()
    opt = engine.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(6):
        perm = engine.randperm(len(train))
        for i in range(0, len(train), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(train.data[idx]), train.targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), train, test


def _quantize(model, calib, backend="x86"):
    fused = tq.fuse_modules(model, [["features.0.0", "features.0.1", "features.0.2"],
                                    ["features.2.0", "features.2.1", "features.2.2"], ["classifier.2", "classifier.3"]])
    fused.qconfig = tq.get_default_qconfig(backend)
    prepared = tq.prepare(fused)
    with engine.no_grad():
        prepared(calib)
    return fused, tq.convert(prepared)


@pytest.mark.slow
def test_static_cnn_keeps_accuracy_and_is_small(trained, tmp_path):
    model, train, test = trained
    float_acc = _accuracy(model, test.data, test.targets)
    assert float_acc > 0.9
    _, q = _quantize(model, train.data[:512])
    assert isinstance(q.features[0][0], nni.quantized.ConvReLU2d) and isinstance(q.classifier[2], nni.quantized.LinearReLU)
    assert isinstance(q.quant, engine.ao.nn.quantized.Quantize)
    q_acc = _accuracy(q, test.data, test.targets)
    assert q_acc >= float_acc - 0.01, (float_acc, q_acc)
    buf_f, buf_q = io.BytesIO(), io.BytesIO()
    engine.save(model.state_dict(), buf_f)
    engine.save(q.state_dict(), buf_q)
    # NOTE: this CNN has only 14k weights, so per-channel scales and the header weigh in: 35 % of float
    # (the MLP and LSTM of test_dynamic.py, with 100k+ weights, are at 26-27 %).
    assert len(buf_q.getvalue()) <= 0.36 * len(buf_f.getvalue())
    engine.save(q.state_dict(), tmp_path / "q.safetensors")
    _, fresh = _quantize(CNN().eval(), train.data[:64])
    fresh.load_state_dict(engine.load(tmp_path / "q.safetensors"))
    assert engine.equal(fresh(test.data), q(test.data))


@pytest.mark.slow
def test_static_cnn_exports_as_qdq_onnx_with_the_same_predictions(trained):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, train, test = trained
    _, q = _quantize(model, train.data[:512])
    buffer = io.BytesIO()
    engine.onnx.export(q, (test.data[:4],), buffer, input_names=["x"], output_names=["logits"],
                       dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    kinds = [n.op_type for n in proto.graph.node]
    assert kinds.count("QuantizeLinear") >= 4 and kinds.count("Conv") == 2 and kinds.count("Gemm") == 2
    per_channel = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.attribute]
    assert len(per_channel) == 4 and all(a.name == "axis" and a.i == 0 for n in per_channel for a in n.attribute)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"x": test.data.numpy()})
    with engine.no_grad():
        engine_predictions = q(test.data).argmax(1).numpy()
    agreement = (logits.argmax(1) == engine_predictions).mean()
    assert agreement >= 0.99, agreement  # measured: 1.000 (all 359 test digits)
    onnx_accuracy = (logits.argmax(1) == test.targets.numpy()).mean()
    assert onnx_accuracy >= _accuracy(model, test.data, test.targets) - 0.01


@pytest.mark.slow
def test_a_traced_static_cnn_saves_and_loads_equal(trained, tmp_path):
    model, train, test = trained
    _, q = _quantize(model, train.data[:512])
    engine.jit.save(engine.jit.trace(q, (test.data[:4],)), tmp_path / "q.pt")
    loaded = engine.jit.load(tmp_path / "q.pt")
    with engine.no_grad():
        assert engine.equal(loaded(test.data), q(test.data))


@pytest.mark.slow
def test_fuse_conv_bn_relu_is_exact(trained):
    model, _, test = trained
    fused = tq.fuse_modules(model, [["features.0.0", "features.0.1", "features.0.2"]])
    assert isinstance(fused.features[0][0], nni.ConvReLU2d) and isinstance(fused.features[0][1], nn.Identity)
    x = test.data[:32]
    with engine.no_grad():
        np.testing.assert_allclose(fused.features[0](x).numpy(), model.features[0](x).numpy(), rtol=1e-5, atol=1e-5)
    conv_bn = tq.fuse_modules(model.features[2], ["0", "1"])
    assert type(conv_bn[0]) is nn.Conv2d and conv_bn[0].bias is not None
    with pytest.raises(NotImplementedError, match="Cannot fuse"):
        tq.fuse_modules(model, [["features.1", "classifier.2"]])


def test_fuse_matches_torch_folding():
    engine.manual_seed(3)
    conv, bn = nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)
    bn.running_mean.copy_(engine.randn(4))
    bn.running_var.copy_(engine.rand(4) + 0.5)
    bn.weight.data = engine.randn(4)
    seq = nn.Sequential(conv, bn).eval()
    tseq = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    tseq.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in seq.state_dict().items()})
    mine = tq.fuse_modules(seq, ["0", "1"])[0]
    ref = torch.ao.quantization.fuse_modules(tseq, ["0", "1"])[0]
    np.testing.assert_allclose(mine.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(mine.bias.detach().numpy(), ref.bias.detach().numpy(), rtol=1e-6, atol=1e-7)


class AddNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
        self.skip = engine.ao.nn.quantized.FloatFunctional()

    def forward(self, x):
        x = self.quant(x)
        return self.dequant(self.skip.add(self.fc1(x), self.fc2(x)))


def test_float_functional_add_converts():
    engine.manual_seed(0)
    model = AddNet().eval()
    model.qconfig = tq.get_default_qconfig("qnnpack")
    x = engine.randn(256, 8)
    prepared = tq.prepare(model)
    assert isinstance(prepared.skip.activation_post_process, tq.HistogramObserver)
    prepared(x)
    q = tq.convert(prepared)
    assert isinstance(q.skip, engine.ao.nn.quantized.QFunctional)
    np.testing.assert_allclose(q(x).numpy(), model(x).detach().numpy(), atol=0.1)


def test_observers_match_torch():
    x = np.random.default_rng(0).standard_normal((16, 5)).astype(np.float32) * 2 + 0.3
    pairs = [(tq.MinMaxObserver(), torch.ao.quantization.MinMaxObserver()),
             (tq.MinMaxObserver(reduce_range=True), torch.ao.quantization.MinMaxObserver(reduce_range=True)),
             (tq.MinMaxObserver(dtype=engine.qint8, qscheme=engine.per_tensor_symmetric),
              torch.ao.quantization.MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)),
             (tq.MovingAverageMinMaxObserver(), torch.ao.quantization.MovingAverageMinMaxObserver()),
             (tq.PerChannelMinMaxObserver(ch_axis=1, dtype=engine.qint8, qscheme=engine.per_channel_symmetric),
              torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=1, dtype=torch.qint8,
                                                              qscheme=torch.per_channel_symmetric)),
             (tq.PerChannelMinMaxObserver(ch_axis=0), torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0))]
    for mine, ref in pairs:
        for chunk in (x[:8], x[8:]):
            mine(engine.tensor(chunk))
            ref(torch.from_numpy(chunk))
        (s, z), (ts, tz) = mine.calculate_qparams(), ref.calculate_qparams()
        assert np.array_equal(s.numpy(), ts.numpy()), type(mine).__name__
        assert z.tolist() == tz.tolist(), type(mine).__name__


@pytest.mark.parametrize("reduce_range", [False, True])
def test_histogram_observer_matches_torch(reduce_range):
    rng = np.random.default_rng(0)
    mine = tq.HistogramObserver(reduce_range=reduce_range)
    ref = torch.ao.quantization.HistogramObserver(reduce_range=reduce_range)
    for i in range(4):
        x = (rng.standard_normal(3000) * (1 + i) + 0.2 * i).astype(np.float32)
        x[0] = 12.0 * (i + 1)  # an outlier the search clips away
        mine(engine.tensor(x))
        ref(torch.from_numpy(x))
    np.testing.assert_allclose(mine.histogram.numpy(), ref.histogram.numpy(), atol=0.02)
    (s, z), (ts, tz) = mine.calculate_qparams(), ref.calculate_qparams()
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=1e-5)
    assert z.tolist() == tz.tolist()

"""Every layer against its PyTorch twin: same weights, same inputs -> same outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import nn as enn

# torch (the oracle) warns that it copies the input for even-sized 'same' kernels; not our concern
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

F64 = {"rtol": 1e-7, "atol": 1e-9}
F32 = {"rtol": 2e-4, "atol": 2e-5}


def _mask(shape, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.random(shape) < 0.3
    m[..., 0] = False  # every query keeps at least one key
    return m


# (id, factory(nn) -> module, input shapes (or arrays), forward kwargs factory(lib) or None)
LAYERS = [
    ("linear", lambda nn: nn.Linear(5, 3), [(4, 5)], None),
    ("linear_nobias_3d", lambda nn: nn.Linear(5, 3, bias=False), [(2, 3, 5)], None),
    ("linear_1d_input", lambda nn: nn.Linear(5, 3), [(5,)], None),
    ("bilinear", lambda nn: nn.Bilinear(3, 4, 2), [(5, 3), (5, 4)], None),
    ("identity", lambda nn: nn.Identity(), [(2, 3)], None),
    ("flatten", lambda nn: nn.Flatten(), [(2, 3, 4)], None),
    ("unflatten", lambda nn: nn.Unflatten(1, (2, 3)), [(4, 6)], None),
    ("conv1d", lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1), [(2, 3, 9)], None),
    ("conv1d_same_dilated", lambda nn: nn.Conv1d(3, 4, 3, padding="same", dilation=2), [(2, 3, 9)], None),
    ("conv2d", lambda nn: nn.Conv2d(3, 4, 3, padding=1), [(2, 3, 6, 7)], None),
    ("conv2d_groups", lambda nn: nn.Conv2d(4, 6, (3, 2), stride=2, padding="valid", dilation=(1, 2), groups=2,
                                           bias=False), [(2, 4, 9, 8)], None),
    ("conv2d_same_even", lambda nn: nn.Conv2d(3, 4, 4, padding="same"), [(2, 3, 6, 5)], None),
    ("conv2d_reflect", lambda nn: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), [(2, 3, 6, 5)], None),
    ("conv2d_circular", lambda nn: nn.Conv2d(3, 2, 3, padding=2, padding_mode="circular"), [(1, 3, 5, 5)], None),
    ("conv2d_stride", lambda nn: nn.Conv2d(3, 4, 3, stride=(2, 3), padding=(2, 1)), [(2, 3, 8, 9)], None),
    ("conv2d_unbatched", lambda nn: nn.Conv2d(3, 4, 3), [(3, 6, 6)], None),
    ("conv_transpose2d", lambda nn: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
     [(2, 4, 5, 5)], None),
    ("conv_transpose2d_groups", lambda nn: nn.ConvTranspose2d(4, 6, (3, 2), stride=(1, 2), groups=2, dilation=2),
     [(2, 4, 4, 5)], None),
    ("conv_transpose1d", lambda nn: nn.ConvTranspose1d(4, 3, 3, stride=2), [(2, 4, 5)], None),
    ("maxpool1d", lambda nn: nn.MaxPool1d(3, 2, 1), [(2, 3, 10)], None),
    ("maxpool2d", lambda nn: nn.MaxPool2d(2), [(2, 3, 8, 8)], None),
    ("maxpool2d_ceil", lambda nn: nn.MaxPool2d(3, 2, 1, ceil_mode=True), [(2, 3, 9, 9)], None),
    ("maxpool2d_indices", lambda nn: nn.MaxPool2d(2, return_indices=True), [(2, 3, 6, 6)], None),
    ("avgpool1d", lambda nn: nn.AvgPool1d(3, 2, 1), [(2, 3, 10)], None),
    ("avgpool2d", lambda nn: nn.AvgPool2d(3, 2, 1), [(2, 3, 8, 8)], None),
    ("avgpool2d_ceil_nopad", lambda nn: nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
     [(2, 3, 7, 7)], None),
    ("adaptive_avgpool2d_1", lambda nn: nn.AdaptiveAvgPool2d((1, 1)), [(2, 3, 5, 5)], None),
    ("adaptive_avgpool2d_uneven", lambda nn: nn.AdaptiveAvgPool2d((3, 2)), [(2, 3, 7, 5)], None),
    ("adaptive_maxpool2d", lambda nn: nn.AdaptiveMaxPool2d((3, 2)), [(2, 3, 7, 5)], None),
    ("batchnorm1d", lambda nn: nn.BatchNorm1d(4), [(6, 4)], None),
    ("batchnorm1d_3d", lambda nn: nn.BatchNorm1d(4), [(6, 4, 5)], None),
    ("batchnorm2d", lambda nn: nn.BatchNorm2d(3), [(4, 3, 5, 5)], None),
    ("batchnorm2d_no_stats", lambda nn: nn.BatchNorm2d(3, affine=False, track_running_stats=False),
     [(4, 3, 5, 5)], None),
    ("batchnorm2d_cumulative", lambda nn: nn.BatchNorm2d(3, momentum=None), [(4, 3, 5, 5)], None),
    ("instancenorm2d", lambda nn: nn.InstanceNorm2d(3, affine=True), [(2, 3, 5, 5)], None),
    ("layernorm", lambda nn: nn.LayerNorm(6), [(3, 4, 6)], None),
    ("layernorm_2d_noaffine", lambda nn: nn.LayerNorm((4, 6), elementwise_affine=False), [(3, 4, 6)], None),
    ("layernorm_nobias", lambda nn: nn.LayerNorm(6, bias=False), [(3, 6)], None),
    ("groupnorm", lambda nn: nn.GroupNorm(2, 6), [(3, 6, 4, 4)], None),
    ("groupnorm_noaffine", lambda nn: nn.GroupNorm(3, 6, affine=False), [(3, 6, 5)], None),
    ("rmsnorm", lambda nn: nn.RMSNorm(6), [(3, 4, 6)], None),
    ("rmsnorm_eps", lambda nn: nn.RMSNorm((4, 6), eps=1e-3), [(3, 4, 6)], None),
    ("localresponsenorm", lambda nn: nn.LocalResponseNorm(3), [(2, 5, 4, 4)], None),
    ("dropout_p0", lambda nn: nn.Dropout(0.0), [(4, 5)], None),
    ("embedding", lambda nn: nn.Embedding(10, 4, padding_idx=1), [np.array([[1, 2, 3, 1], [9, 0, 1, 2]])], None),
    ("embedding_1d", lambda nn: nn.Embedding(7, 3), [np.array([6, 0, 6, 2])], None),
    ("rnn", lambda nn: nn.RNN(4, 5, num_layers=2, batch_first=True), [(3, 6, 4)], None),
    ("rnn_relu_bidir", lambda nn: nn.RNN(4, 5, nonlinearity="relu", bidirectional=True), [(6, 3, 4)], None),
    ("rnn_unbatched_h0", lambda nn: nn.RNN(4, 5), [(6, 4), (1, 5)], None),
    ("lstm", lambda nn: nn.LSTM(4, 5, 2, bidirectional=True), [(6, 3, 4)], None),
    ("lstm_batch_first_nobias", lambda nn: nn.LSTM(4, 5, batch_first=True, bias=False), [(3, 6, 4)], None),
    ("gru", lambda nn: nn.GRU(4, 5, num_layers=2, batch_first=True, bidirectional=True), [(3, 6, 4)], None),
    ("gru_h0", lambda nn: nn.GRU(4, 5), [(6, 3, 4), (1, 3, 5)], None),
    ("rnncell", lambda nn: nn.RNNCell(4, 5), [(3, 4), (3, 5)], None),
    ("lstmcell", lambda nn: nn.LSTMCell(4, 5), [(3, 4)], None),
    ("grucell", lambda nn: nn.GRUCell(4, 5), [(3, 4), (3, 5)], None),
    ("mha", lambda nn: nn.MultiheadAttention(8, 2), [(5, 3, 8), (6, 3, 8), (6, 3, 8)], None),
    ("mha_self_batch_first_masks", lambda nn: nn.MultiheadAttention(8, 4, batch_first=True),
     [(3, 5, 8)] * 3, lambda lib: {"key_padding_mask": lib.tensor(_mask((3, 5))),
                                   "attn_mask": lib.tensor(_mask((5, 5), 1))}),
    ("mha_float_mask_per_head", lambda nn: nn.MultiheadAttention(8, 2, batch_first=True),
     [(2, 4, 8), (2, 6, 8), (2, 6, 8)],
     lambda lib: {"attn_mask": lib.tensor(np.random.default_rng(3).standard_normal((4, 4, 6))),
                  "average_attn_weights": False}),
    ("mha_kdim_vdim", lambda nn: nn.MultiheadAttention(8, 2, kdim=5, vdim=3), [(4, 2, 8), (6, 2, 5), (6, 2, 3)],
     None),
    ("mha_unbatched_no_weights", lambda nn: nn.MultiheadAttention(8, 2, bias=False), [(4, 8), (6, 8), (6, 8)],
     lambda lib: {"need_weights": False}),
    ("encoder_layer", lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [(5, 3, 8)], None),
    ("encoder_layer_prenorm_gelu", lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu",
                                                                           norm_first=True, batch_first=True),
     [(3, 5, 8)], lambda lib: {"src_mask": lib.tensor(_mask((5, 5), 2))}),
    ("encoder", lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                                            batch_first=True), 2,
                                                 norm=nn.LayerNorm(8), enable_nested_tensor=False),
     [(3, 5, 8)], lambda lib: {"src_key_padding_mask": lib.tensor(_mask((3, 5), 4))}),
    ("decoder_layer", lambda nn: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), [(4, 3, 8), (6, 3, 8)], None),
    ("decoder_layer_prenorm", lambda nn: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, norm_first=True,
                                                                     batch_first=True),
     [(3, 4, 8), (3, 6, 8)], lambda lib: {"tgt_mask": lib.tensor(~np.tril(np.ones((4, 4), bool)))}),
    ("relu", lambda nn: nn.ReLU(), [(4, 5)], None),
    ("relu6", lambda nn: nn.ReLU6(), [(4, 5)], None),
    ("leaky_relu", lambda nn: nn.LeakyReLU(0.2), [(4, 5)], None),
    ("elu", lambda nn: nn.ELU(0.7), [(4, 5)], None),
    ("celu", lambda nn: nn.CELU(0.7), [(4, 5)], None),
    ("selu", lambda nn: nn.SELU(), [(4, 5)], None),
    ("gelu", lambda nn: nn.GELU(), [(4, 5)], None),
    ("gelu_tanh", lambda nn: nn.GELU("tanh"), [(4, 5)], None),
    ("silu", lambda nn: nn.SiLU(), [(4, 5)], None),
    ("mish", lambda nn: nn.Mish(), [(4, 5)], None),
    ("tanh", lambda nn: nn.Tanh(), [(4, 5)], None),
    ("sigmoid", lambda nn: nn.Sigmoid(), [(4, 5)], None),
    ("softplus", lambda nn: nn.Softplus(beta=2.0, threshold=3.0), [(4, 5)], None),
    ("softmax", lambda nn: nn.Softmax(dim=1), [(4, 5)], None),
    ("softmin", lambda nn: nn.Softmin(dim=0), [(4, 5)], None),
    ("log_softmax", lambda nn: nn.LogSoftmax(dim=-1), [(2, 4, 5)], None),
    ("hardtanh", lambda nn: nn.Hardtanh(-0.5, 0.5), [(4, 5)], None),
    ("hardswish", lambda nn: nn.Hardswish(), [(4, 5)], None),
    ("hardsigmoid", lambda nn: nn.Hardsigmoid(), [(4, 5)], None),
    ("logsigmoid", lambda nn: nn.LogSigmoid(), [(4, 5)], None),
    ("softsign", lambda nn: nn.Softsign(), [(4, 5)], None),
    ("tanhshrink", lambda nn: nn.Tanhshrink(), [(4, 5)], None),
    ("glu", lambda nn: nn.GLU(), [(4, 6)], None),
    ("prelu", lambda nn: nn.PReLU(3), [(4, 3, 5)], None),
    ("zeropad2d", lambda nn: nn.ZeroPad2d(1), [(2, 3, 4, 4)], None),
    ("constantpad1d", lambda nn: nn.ConstantPad1d((2, 1), 0.5), [(2, 3, 4)], None),
    ("reflectionpad2d", lambda nn: nn.ReflectionPad2d((1, 2, 0, 1)), [(2, 3, 4, 4)], None),
    ("replicationpad2d", lambda nn: nn.ReplicationPad2d(2), [(2, 3, 4, 4)], None),
    ("upsample_nearest", lambda nn: nn.Upsample(scale_factor=2), [(2, 3, 4, 5)], None),
    ("upsample_bilinear_size", lambda nn: nn.Upsample(size=(5, 7), mode="bilinear"), [(2, 3, 4, 3)], None),
    ("upsample_bilinear_corners", lambda nn: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
     [(2, 3, 4, 3)], None),
    ("upsample_linear", lambda nn: nn.Upsample(scale_factor=1.5, mode="linear"), [(2, 3, 4)], None),
    ("pixel_shuffle", lambda nn: nn.PixelShuffle(2), [(2, 8, 3, 3)], None),
    ("cosine_similarity", lambda nn: nn.CosineSimilarity(dim=1), [(4, 5), (4, 5)], None),
    ("pairwise_distance", lambda nn: nn.PairwiseDistance(), [(4, 5), (4, 5)], None),
]


def _inputs(spec, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [s if isinstance(s, np.ndarray) else rng.standard_normal(s).astype(dtype) for s in spec]


def _build(factory, torch, dtype):
    engine.manual_seed(0)
    module = factory(enn)
    torch_module = factory(torch.nn)
    if dtype == np.float64:
        module.double()
        torch_module.double()
    return module, torch_module


def _kwargs(kw_factory, torch, dtype):
    if kw_factory is None:
        return None
    kwargs = kw_factory(engine)
    for key, value in kwargs.items():
        if isinstance(value, engine.Tensor) and value.is_floating_point():
            kwargs[key] = value.to(engine.float64 if dtype == np.float64 else engine.float32)
    return kwargs


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize(("name", "factory", "shapes", "kw"), LAYERS, ids=[row[0] for row in LAYERS])
def test_layer_matches_torch_float64(twin, torch, name, factory, shapes, kw, mode):
    module, torch_module = _build(factory, torch, np.float64)
    module.train(mode == "train")
    twin(module, torch_module, _inputs(shapes, np.float64), kwargs=_kwargs(kw, torch, np.float64), **F64)


@pytest.mark.parametrize(("name", "factory", "shapes", "kw"), LAYERS, ids=[row[0] for row in LAYERS])
def test_layer_matches_torch_float32(twin, torch, name, factory, shapes, kw):
    module, torch_module = _build(factory, torch, np.float32)
    twin(module, torch_module, _inputs(shapes, np.float32), kwargs=_kwargs(kw, torch, np.float32), **F32)


def test_lstm_initial_states_and_outputs(twin, torch):
    module, torch_module = _build(lambda nn: nn.LSTM(4, 5, num_layers=2, batch_first=True), torch, np.float64)
    rng = np.random.default_rng(1)
    h0, c0 = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    twin(module, torch_module, _inputs([(3, 6, 4)], np.float64),
         kwargs={"hx": (engine.tensor(h0), engine.tensor(c0))}, **F64)


def test_dropout_statistics():
    drop = enn.Dropout(0.3)
    x = engine.ones(200_000)
    y = drop(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    drop.eval()
    assert drop(x) is x


def test_dropout_gradient_uses_the_same_mask():
    x = engine.ones(1000, requires_grad=True)
    y = enn.functional.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def test_rnn_dropout_between_layers_is_active_in_training_only():
    rnn = enn.LSTM(4, 8, num_layers=2, dropout=0.5)
    x = engine.randn(5, 2, 4)
    rnn.eval()
    a, b = rnn(x)[0], rnn(x)[0]
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    rnn.train()
    c, d = rnn(x)[0], rnn(x)[0]
    assert not np.allclose(c.detach().numpy(), d.detach().numpy())


def test_batchnorm_eval_uses_running_statistics(twin, torch):
    module, torch_module = _build(lambda nn: nn.BatchNorm2d(3), torch, np.float64)
    x = _inputs([(4, 3, 5, 5)], np.float64)
    for _ in range(3):  # a few training steps move the running statistics
        module(engine.tensor(x[0] * 2 + 1))
    assert int(module.num_batches_tracked) == 3
    module.eval()
    twin(module, torch_module, x, **F64)


def test_embedding_padding_row_gets_no_gradient():
    emb = enn.Embedding(5, 3, padding_idx=0)
    assert not emb.weight[0].detach().numpy().any()
    emb(engine.tensor([0, 0, 2])).sum().backward()
    assert not emb.weight.grad[0].numpy().any()
    np.testing.assert_array_equal(emb.weight.grad[2].numpy(), np.ones(3))


def test_embedding_max_norm_renormalizes_looked_up_rows(torch):
    emb = enn.Embedding(6, 4, max_norm=1.0)
    t_emb = torch.nn.Embedding(6, 4, max_norm=1.0)
    t_emb.weight.data = torch.tensor(emb.weight.detach().numpy().copy())
    idx = np.array([1, 3, 3])
    out = emb(engine.tensor(idx))
    t_out = t_emb(torch.tensor(idx))
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb.weight.detach().numpy(), t_emb.weight.detach().numpy(), rtol=1e-5, atol=1e-6)

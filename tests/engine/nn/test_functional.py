"""nn.functional against torch.nn.functional: losses, attention, padding, interpolation, normalization."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import engine
import engine.nn.functional as F

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 5))
CLASSES = np.array([0, 4, 2, 2, -100, 1])
PROBS = np.abs(RNG.standard_normal((6, 5)))
PROBS /= PROBS.sum(1, keepdims=True)
WEIGHT = np.array([0.5, 1.0, 2.0, 1.5, 0.7])
LOGITS_ND = RNG.standard_normal((2, 5, 3, 4))
CLASSES_ND = RNG.integers(0, 5, (2, 3, 4))
X = RNG.standard_normal((4, 6))
Y = RNG.standard_normal((4, 6))
P01 = 1 / (1 + np.exp(-X))
T01 = (RNG.random((4, 6)) < 0.5).astype(np.float64)


def _w(lib):
    return lib.tensor(WEIGHT)


def _weighted_smoothed_ce(F, lib, x, reduction):
    return F.cross_entropy(x, lib.tensor(CLASSES), weight=_w(lib), reduction=reduction, label_smoothing=0.1)


# (id, fn(F, lib, *inputs) -> tensor, float inputs (differentiated), extra integer inputs)
CASES = [
    ("cross_entropy", lambda F, lib, x: F.cross_entropy(x, lib.tensor(CLASSES[:5].clip(0))), [LOGITS[:5]]),
    ("cross_entropy_ignore_weight_smooth",
     lambda F, lib, x: F.cross_entropy(x, lib.tensor(CLASSES), weight=_w(lib), label_smoothing=0.2), [LOGITS]),
    *[(f"cross_entropy_{r}", functools.partial(_weighted_smoothed_ce, reduction=r), [LOGITS])
      for r in ("none", "sum", "mean")],
    ("cross_entropy_probs", lambda F, lib, x, p: F.cross_entropy(x, p, label_smoothing=0.1), [LOGITS, PROBS]),
    ("cross_entropy_probs_weight_none",
     lambda F, lib, x: F.cross_entropy(x, lib.tensor(PROBS), weight=_w(lib), reduction="none"), [LOGITS]),
    ("cross_entropy_nd", lambda F, lib, x: F.cross_entropy(x, lib.tensor(CLASSES_ND)), [LOGITS_ND]),
    ("cross_entropy_nd_none", lambda F, lib, x: F.cross_entropy(x, lib.tensor(CLASSES_ND), reduction="none"),
     [LOGITS_ND]),
    ("cross_entropy_unbatched", lambda F, lib, x: F.cross_entropy(x, lib.tensor(3)), [LOGITS[0]]),
    ("nll_loss", lambda F, lib, x: F.nll_loss(F.log_softmax(x, 1), lib.tensor(CLASSES), weight=_w(lib)),
     [LOGITS]),
    ("nll_loss_nd_none", lambda F, lib, x: F.nll_loss(x, lib.tensor(CLASSES_ND), reduction="none"), [LOGITS_ND]),
    ("mse_loss", lambda F, lib, x, y: F.mse_loss(x, y), [X, Y]),
    ("mse_loss_sum", lambda F, lib, x, y: F.mse_loss(x, y, reduction="sum"), [X, Y]),
    ("l1_loss_none", lambda F, lib, x, y: F.l1_loss(x, y, reduction="none"), [X, Y]),
    ("smooth_l1_loss", lambda F, lib, x, y: F.smooth_l1_loss(x, y, beta=0.5), [X, Y]),
    ("huber_loss", lambda F, lib, x, y: F.huber_loss(x, y, delta=0.7), [X, Y]),
    ("binary_cross_entropy", lambda F, lib, p: F.binary_cross_entropy(p, lib.tensor(T01)), [P01]),
    ("binary_cross_entropy_weight", lambda F, lib, p: F.binary_cross_entropy(
        p, lib.tensor(T01), weight=lib.tensor(WEIGHT[:1].repeat(6)), reduction="sum"), [P01]),
    ("bce_with_logits", lambda F, lib, x: F.binary_cross_entropy_with_logits(x, lib.tensor(T01)), [X * 5]),
    ("bce_with_logits_pos_weight", lambda F, lib, x, t: F.binary_cross_entropy_with_logits(
        x, t, pos_weight=lib.tensor(np.linspace(0.5, 3, 6)), reduction="none"), [X, T01]),
    ("kl_div", lambda F, lib, x: F.kl_div(F.log_softmax(x, 1), lib.tensor(PROBS), reduction="batchmean"),
     [LOGITS]),
    ("kl_div_log_target", lambda F, lib, x, t: F.kl_div(x, t, reduction="sum", log_target=True),
     [LOGITS, np.log(PROBS)]),
    ("sdpa", lambda F, lib, q, k, v: F.scaled_dot_product_attention(q, k, v),
     [RNG.standard_normal((2, 3, 4, 8)), RNG.standard_normal((2, 3, 5, 8)), RNG.standard_normal((2, 3, 5, 8))]),
    ("sdpa_causal_scale", lambda F, lib, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                                   scale=0.3),
     [RNG.standard_normal((2, 4, 8))] * 3),
    ("sdpa_bool_mask", lambda F, lib, q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=lib.tensor(np.tril(np.ones((4, 5), bool), 1))),
     [RNG.standard_normal((2, 4, 8)), RNG.standard_normal((2, 5, 8)), RNG.standard_normal((2, 5, 8))]),
    ("sdpa_float_mask", lambda F, lib, q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
     [RNG.standard_normal((2, 4, 8)), RNG.standard_normal((2, 5, 8)), RNG.standard_normal((2, 5, 8)),
      RNG.standard_normal((4, 5))]),
    ("sdpa_gqa", lambda F, lib, q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
     [RNG.standard_normal((1, 4, 3, 8)), RNG.standard_normal((1, 2, 3, 8)), RNG.standard_normal((1, 2, 3, 8))]),
    ("pad_constant", lambda F, lib, x: F.pad(x, (1, 2, 0, 1), value=0.5), [LOGITS_ND]),
    ("pad_negative", lambda F, lib, x: F.pad(x, (-1, 1)), [X]),
    ("pad_reflect", lambda F, lib, x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [LOGITS_ND]),
    ("pad_replicate", lambda F, lib, x: F.pad(x, (2, 1), mode="replicate"), [LOGITS_ND[0]]),
    ("pad_circular", lambda F, lib, x: F.pad(x, (1, 2, 2, 1), mode="circular"), [LOGITS_ND]),
    ("interpolate_nearest_size", lambda F, lib, x: F.interpolate(x, size=(5, 7)), [LOGITS_ND]),
    ("interpolate_bilinear_scale", lambda F, lib, x: F.interpolate(x, scale_factor=1.7, mode="bilinear"),
     [LOGITS_ND]),
    ("interpolate_bilinear_corners", lambda F, lib, x: F.interpolate(x, size=(2, 9), mode="bilinear",
                                                                     align_corners=True), [LOGITS_ND]),
    ("interpolate_nearest_exact", lambda F, lib, x: F.interpolate(x, size=(5, 3), mode="nearest-exact"),
     [LOGITS_ND]),
    ("interpolate_area", lambda F, lib, x: F.interpolate(x, size=(2, 3), mode="area"), [LOGITS_ND]),
    ("normalize", lambda F, lib, x: F.normalize(x), [X]),
    ("normalize_p1_dim0", lambda F, lib, x: F.normalize(x, p=1.0, dim=0), [X]),
    ("cosine_similarity", lambda F, lib, x, y: F.cosine_similarity(x, y, dim=1), [X, Y]),
    ("cosine_similarity_broadcast", lambda F, lib, x, y: F.cosine_similarity(x, y, dim=-1), [X, Y[:1]]),
    ("one_hot", lambda F, lib, x: x * F.one_hot(lib.tensor(CLASSES[:4].clip(0)), 6).to(x.dtype), [X]),
    ("layer_norm", lambda F, lib, x, w, b: F.layer_norm(x, (6,), w, b, eps=1e-3), [X, Y[0], Y[1]]),
    ("group_norm", lambda F, lib, x: F.group_norm(x, 5), [LOGITS_ND]),
    ("batch_norm_train", lambda F, lib, x: F.batch_norm(x, None, None, training=True), [LOGITS_ND]),
    ("linear", lambda F, lib, x, w, b: F.linear(x, w, b), [X, Y, Y[0, :4]]),
    ("conv2d", lambda F, lib, x, w: F.conv2d(x, w, stride=2, padding=1), [LOGITS_ND, RNG.standard_normal((3, 5,
                                                                                                          2, 2))]),
    ("max_pool2d", lambda F, lib, x: F.max_pool2d(x, 2, 1), [LOGITS_ND]),
    ("avg_pool2d", lambda F, lib, x: F.avg_pool2d(x, (2, 3), (1, 2), (1, 1)), [LOGITS_ND]),
    ("embedding", lambda F, lib, w: F.embedding(lib.tensor(CLASSES_ND), w), [LOGITS[:5]]),
    ("gelu_tanh", lambda F, lib, x: F.gelu(x, approximate="tanh"), [X]),
    ("softplus", lambda F, lib, x: F.softplus(x * 10, beta=0.5, threshold=5), [X]),
    ("logsigmoid", lambda F, lib, x: F.logsigmoid(x * 20), [X]),
    ("glu_dim0", lambda F, lib, x: F.glu(x, 0), [X]),
    ("hardswish", lambda F, lib, x: F.hardswish(x * 3), [X]),
    ("pixel_unshuffle", lambda F, lib, x: F.pixel_unshuffle(x, 2), [RNG.standard_normal((2, 3, 4, 6))]),
    ("unfold", lambda F, lib, x: F.unfold(x, (2, 3), padding=1, stride=2), [LOGITS_ND]),
]


@pytest.mark.parametrize(("name", "fn", "inputs"), CASES, ids=[c[0] for c in CASES])
def test_functional_matches_torch(torch, name, fn, inputs):
    e_in = [engine.tensor(x, requires_grad=True) for x in inputs]
    t_in = [torch.tensor(x, requires_grad=True) for x in inputs]
    e_out = fn(F, engine, *e_in)
    t_out = fn(torch.nn.functional, torch, *t_in)
    assert tuple(e_out.shape) == tuple(t_out.shape)
    np.testing.assert_allclose(e_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-7, atol=1e-9)
    g = np.random.default_rng(1).standard_normal(tuple(t_out.shape))
    e_out.backward(engine.tensor(g))
    t_out.backward(torch.tensor(g))
    for e, t in zip(e_in, t_in, strict=True):
        expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        got = np.zeros(t.shape) if e.grad is None else e.grad.numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9)


def test_cross_entropy_float32_large_logits_stay_finite(torch):
    x = np.array([[1000.0, -1000.0, 0.0], [50.0, 60.0, 70.0]], np.float32)
    t = np.array([1, 0])
    e = engine.tensor(x, requires_grad=True)
    loss = F.cross_entropy(e, engine.tensor(t))
    loss.backward()
    ref = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t))
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-6)
    assert np.isfinite(e.grad.numpy()).all()


def test_cross_entropy_double_backward(torch):
    """create_graph=True through the fused cross entropy gives PyTorch's second derivatives."""
    results = []
    for lib, fn in ((engine, F), (torch, torch.nn.functional)):
        x = lib.tensor(LOGITS, requires_grad=True)
        loss = fn.cross_entropy(x * x, lib.tensor(CLASSES), weight=_w(lib), label_smoothing=0.1)
        (g,) = lib.autograd.grad(loss, x, create_graph=True)
        (g * g).sum().backward()
        results.append(x.grad.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-7, atol=1e-9)


def test_layer_norm_double_backward(torch):
    results = []
    for lib, fn in ((engine, F), (torch, torch.nn.functional)):
        x = lib.tensor(X, requires_grad=True)
        out = fn.layer_norm(x, (6,), lib.tensor(Y[0]), None)
        (g,) = lib.autograd.grad((out * out * out).sum(), x, create_graph=True)
        g.sum().backward()
        results.append(x.grad.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: F.cross_entropy(engine.randn(3, 4), engine.tensor([0, 4, 1])), IndexError, "out of bounds"),
    (lambda: F.cross_entropy(engine.randn(3, 4), engine.tensor([0, 1])), ValueError, "batch_size"),
    (lambda: F.mse_loss(engine.randn(3), engine.randn(3), reduction="avg"), ValueError, "not a valid value"),
    (lambda: F.conv2d(engine.randn(1, 3, 5, 5), engine.randn(4, 2, 3, 3)), RuntimeError, "channels"),
    (lambda: F.binary_cross_entropy(engine.tensor([1.5]), engine.tensor([1.0])), RuntimeError, "between 0 and 1"),
    (lambda: F.dropout(engine.randn(3), p=1.5), ValueError, "between 0 and 1"),
    (lambda: F.pad(engine.randn(3, 3), (1,)), RuntimeError, "divisible by 2"),
    (lambda: F.embedding(engine.tensor([5]), engine.randn(5, 2)), IndexError, "index out of range"),
    (lambda: F.layer_norm(engine.randn(3, 4), (5,)), RuntimeError, "normalized_shape"),
])
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_one_hot_infers_classes(torch):
    got = F.one_hot(engine.tensor([[0, 3], [1, 1]]))
    want = torch.nn.functional.one_hot(torch.tensor([[0, 3], [1, 1]]))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert got.dtype == engine.int64


def test_sdpa_dropout_is_reproducible_with_manual_seed():
    q = engine.randn(2, 4, 8)
    engine.manual_seed(3)
    a = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    engine.manual_seed(3)
    b = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    np.testing.assert_array_equal(a.numpy(), b.numpy())

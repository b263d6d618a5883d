"""conv_tbc, grouped_mm and linear_cross_entropy / LinearCrossEntropyLoss against torch, with gradients."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

RNG = np.random.default_rng(16)


@pytest.mark.parametrize("pad", [0, 1, 2])
def test_conv_tbc_matches_torch(both, pad):
    both(lambda lib, x, w, b: lib.nn.functional.conv_tbc(x, w, b, pad),
         [RNG.standard_normal((7, 2, 4)), RNG.standard_normal((3, 4, 5)), RNG.standard_normal(5)])


def test_conv_tbc_gradcheck():
    args = [engine.tensor(RNG.standard_normal(s), requires_grad=True) for s in ((5, 2, 3), (2, 3, 4), (4,))]
    assert engine.autograd.gradcheck(lambda x, w, b: F.conv_tbc(x, w, b, 1), args)


# NOTE: torch's CPU grouped_mm wants 16-byte aligned strides, hence the sizes of 8.
OFFS = np.array([5, 12, 24], dtype=np.int32)
GMM = [
    ("2d_3d", (24, 8), (3, 8, 8)),
    ("3d_3d", (3, 8, 8), (3, 8, 8)),
    ("3d_2d", (3, 8, 8), (8, 24)),
    ("2d_2d", (8, 24), (24, 8)),
]


@pytest.mark.parametrize(("name", "a", "b"), GMM, ids=[g[0] for g in GMM])
def test_grouped_mm_matches_torch(torch, name, a, b):
    a_np, b_np = RNG.standard_normal(a).astype(np.float32), RNG.standard_normal(b).astype(np.float32)
    offs = None if name == "3d_3d" else OFFS
    ours_a, ours_b = engine.tensor(a_np, requires_grad=True), engine.tensor(b_np, requires_grad=True)
    ref_a, ref_b = torch.tensor(a_np, requires_grad=True), torch.tensor(b_np, requires_grad=True)
    ours = F.grouped_mm(ours_a, ours_b, offs=None if offs is None else engine.tensor(offs))
    ref = torch.nn.functional.grouped_mm(ref_a, ref_b, offs=None if offs is None else torch.tensor(offs))
    np.testing.assert_allclose(ours.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = RNG.standard_normal(tuple(ref.shape)).astype(np.float32)
    ours.backward(engine.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(ours_a.grad.numpy(), ref_a.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours_b.grad.numpy(), ref_b.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_grouped_mm_rejects_bad_offsets():
    with pytest.raises(RuntimeError, match="offs is required"):
        F.grouped_mm(engine.randn(4, 8), engine.randn(2, 8, 8))
    with pytest.raises(RuntimeError, match="non-decreasing"):
        F.grouped_mm(engine.randn(4, 8), engine.randn(2, 8, 8), offs=engine.tensor([3, 2]))


LCE = [
    ("bias_smoothing", {"label_smoothing": 0.1}, (5, 4), True),
    ("sum_ignore_index", {"reduction": "sum", "ignore_index": 2}, (5, 4), False),
    ("k_dim_none", {"reduction": "none"}, (5, 3, 4), True),
]


@pytest.mark.parametrize(("name", "kwargs", "wshape", "bias"), LCE, ids=[c[0] for c in LCE])
def test_linear_cross_entropy_matches_torch(both, name, kwargs, wshape, bias):
    target = RNG.integers(0, 5, (6, *wshape[1:-1]))
    floats = [RNG.standard_normal((6, 4)), RNG.standard_normal(wshape)]
    if bias:
        floats.append(RNG.standard_normal(wshape[:-1]))
    both(lambda lib, x, w, *rest: lib.nn.functional.linear_cross_entropy(
        x, w, rest[-1], linear_bias=rest[0] if bias else None, **kwargs), floats, [target])


def test_linear_cross_entropy_loss_module_matches_torch(torch):
    ours = nn.LinearCrossEntropyLoss(4, 5, out_features=(3,), bias=True, label_smoothing=0.2,
                                     options=nn.LinearCrossEntropyOptions())
    ref = torch.nn.LinearCrossEntropyLoss(4, 5, out_features=(3,), bias=True, label_smoothing=0.2).double()
    ref.linear.weight.data = torch.tensor(ours.linear.weight.detach().numpy()).double()
    ref.linear.bias.data = torch.tensor(ours.linear.bias.detach().numpy()).double()
    ours.double()
    x, t = RNG.standard_normal((6, 4)), RNG.integers(0, 5, (6, 3))
    out = ours(engine.tensor(x), engine.tensor(t))
    np.testing.assert_allclose(out.detach().numpy(), ref(torch.tensor(x), torch.tensor(t)).detach().numpy(),
                               rtol=1e-10)
    out.backward()
    assert ours.linear.weight.grad is not None
    assert set(dict(ours.named_parameters())) == set(dict(ref.named_parameters()))


def test_linear_cross_entropy_rejects_bad_shapes():
    with pytest.raises(RuntimeError, match="in_features"):
        F.linear_cross_entropy(engine.randn(2, 3), engine.randn(5, 4), engine.tensor([0, 1]))
    with pytest.raises(ValueError, match="acc_policy"):
        nn.LinearCrossEntropyOptions(acc_policy="fast")

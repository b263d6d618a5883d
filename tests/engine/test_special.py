"""engine.special against torch.special: values over each function's domain and float64 gradients."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.autograd.gradcheck import gradcheck

RNG = np.random.default_rng(7)
WIDE = np.concatenate([RNG.uniform(-8, 8, 40), [0.0, -0.5, 0.5, 2.0, 2.5, -30.5, 31.0, 45.0, -60.0]])
TAIL = np.array([-40.0, -12.0, -6.0, -2.5, -1.0, -0.3, 0.0, 0.7, 3.0, 9.0, 27.0])
POS = RNG.uniform(0.05, 12.0, 30)
UNIT = RNG.uniform(0.001, 0.999, 30)
OPEN = RNG.uniform(-0.99, 0.99, 30)

# name: (call on a module namespace, inputs, differentiable?)
UNARY = {
    "erf": (WIDE, True), "erfc": (np.concatenate([WIDE, TAIL]), True), "erfcx": (np.concatenate([WIDE[:40], TAIL[3:]]), True),
    "erfinv": (OPEN, True), "expit": (WIDE, True), "logit": (UNIT, True), "gammaln": (POS, True),
    "digamma": (POS, True), "psi": (POS, True), "i0": (WIDE, True), "i0e": (WIDE, True), "i1": (WIDE, True),
    "i1e": (WIDE, True), "ndtr": (np.concatenate([WIDE, TAIL]), True), "ndtri": (UNIT, True),
    "log_ndtr": (np.concatenate([WIDE, TAIL]), True), "sinc": (np.append(WIDE, 0.0), True),
    "entr": (np.append(POS, [0.0, -1.0]), False), "exp2": (WIDE, True), "expm1": (WIDE, True),
    "log1p": (POS, True), "spherical_bessel_j0": (np.append(WIDE, 0.0), False),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch(torch, name):
    data, differentiable = UNARY[name]
    e = engine.tensor(data, dtype=engine.float64, requires_grad=differentiable)
    t = torch.tensor(data, dtype=torch.float64, requires_grad=differentiable)
    out_e, out_t = getattr(engine.special, name)(e), getattr(torch.special, name)(t)
    np.testing.assert_allclose(out_e.detach().numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    if differentiable:
        weights = RNG.standard_normal(data.shape)
        (out_e * engine.tensor(weights)).sum().backward()
        (out_t * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["xlogy", "xlog1py", "zeta"])
def test_binary_matches_torch(torch, name):
    x = np.array([0.0, 0.0, 1.5, 2.0, 3.0, 4.5, 1.1, 7.0])
    y = np.array([0.0, 2.0, 0.5, 1.0, 3.5, 0.2, 10.0, 1.3])
    if name == "xlogy":
        x = x - 1.0
    wrt_x = name != "zeta"  # torch has no derivative of zeta in its first argument
    ex, ey = engine.tensor(x, requires_grad=wrt_x), engine.tensor(y + 0.1, requires_grad=True)
    tx, ty = torch.tensor(x, requires_grad=wrt_x), torch.tensor(y + 0.1, requires_grad=True)
    out_e, out_t = getattr(engine.special, name)(ex, ey), getattr(torch.special, name)(tx, ty)
    np.testing.assert_allclose(out_e.detach().numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    out_e.sum().backward()
    out_t.sum().backward()
    np.testing.assert_allclose(ey.grad.numpy(), ty.grad.numpy(), rtol=1e-8)
    if wrt_x:
        np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-8)


def test_xlogy_at_zero_has_zero_gradient_and_keeps_nan(torch):
    x = engine.tensor([0.0, 0.0, 2.0], requires_grad=True)
    y = engine.tensor([0.0, float("nan"), 3.0])
    out = engine.special.xlogy(x, y)
    expected = torch.special.xlogy(torch.tensor([0.0, 0.0, 2.0]), torch.tensor([0.0, float("nan"), 3.0]))
    np.testing.assert_array_equal(out.detach().numpy(), expected.numpy())
    out.sum().backward()
    tx = torch.tensor([0.0, 0.0, 2.0], requires_grad=True)
    torch.special.xlogy(tx, torch.tensor([0.0, 3.0, 3.0])).sum().backward()
    x.grad = None
    engine.special.xlogy(x, engine.tensor([0.0, 3.0, 3.0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    assert engine.special.xlogy(2.0, engine.tensor([3.0])).item() == pytest.approx(2 * np.log(3.0))


def test_reductions_polygamma_multigammaln_and_round_match_torch(torch):
    a = RNG.standard_normal((3, 4))
    e, t = engine.tensor(a), torch.tensor(a)
    for name in ("softmax", "log_softmax"):
        np.testing.assert_allclose(getattr(engine.special, name)(e, 1).numpy(), getattr(torch.special, name)(t, 1).numpy(),
                                   rtol=1e-12)
    np.testing.assert_allclose(engine.special.logsumexp(e, 0).numpy(), torch.special.logsumexp(t, 0).numpy())
    np.testing.assert_allclose(engine.special.polygamma(1, engine.tensor(POS)).numpy(),
                               torch.special.polygamma(1, torch.tensor(POS)).numpy(), rtol=1e-8)
    np.testing.assert_allclose(engine.special.multigammaln(engine.tensor(POS + 2), 3).numpy(),
                               torch.special.multigammaln(torch.tensor(POS + 2), 3).numpy(), rtol=1e-8)
    np.testing.assert_allclose(engine.special.round(e * 10, decimals=1).numpy(),
                               torch.special.round(t * 10, decimals=1).numpy())
    f32 = engine.special.softmax(engine.tensor(a, dtype=engine.float64), 0, dtype=engine.float32)
    assert f32.dtype is engine.float32


@pytest.mark.parametrize("name", ["erfc", "erfcx", "i0", "i0e", "i1", "i1e", "log_ndtr", "sinc"])
def test_gradcheck_float64(name):
    x = engine.tensor([-2.3, -0.7, 0.4, 1.9, 3.1], dtype=engine.float64, requires_grad=True)
    assert gradcheck(getattr(engine.special, name), (x,))


def test_integer_input_is_promoted_and_namespace_has_torch_names(torch):
    out = engine.special.i0(engine.tensor([0, 1, 2]))
    assert out.dtype is engine.float32
    np.testing.assert_allclose(out.numpy(), torch.special.i0(torch.tensor([0, 1, 2])).numpy(), rtol=1e-6)
    assert set(engine.special.__all__) <= set(dir(torch.special))

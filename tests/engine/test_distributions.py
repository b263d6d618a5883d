"""engine.distributions against torch.distributions: densities, moments, gradients, samples, KL, validation."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import engine
from engine import distributions as D

F64 = engine.float64


def _pair(torch, values):
    """An engine and a torch float64 leaf for each array of parameter values."""
    e = [engine.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for v in values]
    t = [torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for v in values]
    return e, t


def _close(a, b, tol=1e-10):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


SPD = [[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]]
TRIL = [[1.2, 0.0, 0.0], [0.4, 0.8, 0.0], [-0.3, 0.5, 1.5]]

# name, parameter values, builder(module, *params), value to evaluate log_prob at
CASES: dict[str, Any] = {
    "Normal": ([[0.0, 1.5, -2.0], [1.0, 0.5, 2.5]], lambda m, a, b: m.Normal(a, b), [0.3, 1.0, -4.0]),
    "Uniform": ([[0.0, -1.0, 2.0], [1.0, 3.0, 2.5]], lambda m, a, b: m.Uniform(a, b), [0.3, 1.0, 2.2]),
    "Exponential": ([[0.5, 1.0, 3.0]], lambda m, r: m.Exponential(r), [0.3, 1.0, 2.2]),
    "Laplace": ([[0.0, 1.5, -2.0], [1.0, 0.5, 2.5]], lambda m, a, b: m.Laplace(a, b), [0.3, 1.0, -4.0]),
    "Bernoulli_probs": ([[0.2, 0.5, 0.9]], lambda m, p: m.Bernoulli(probs=p), [1.0, 0.0, 1.0]),
    "Bernoulli_logits": ([[-1.0, 0.3, 2.0]], lambda m, lg: m.Bernoulli(logits=lg), [1.0, 0.0, 0.0]),
    "Categorical_probs": ([[[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]], lambda m, p: m.Categorical(probs=p), [2, 0]),
    "Categorical_logits": ([[[0.2, -1.3, 0.5], [2.0, 0.1, -0.3]]], lambda m, lg: m.Categorical(logits=lg), [1, 2]),
    "MVN_cov": ([[0.5, -1.0, 2.0], SPD], lambda m, loc, c: m.MultivariateNormal(loc, covariance_matrix=c),
                [[0.0, 0.0, 1.0], [1.0, -1.0, 2.5]]),
    "MVN_tril": ([[0.5, -1.0, 2.0], TRIL], lambda m, loc, s: m.MultivariateNormal(loc, scale_tril=s),
                 [[0.0, 0.0, 1.0], [1.0, -1.0, 2.5]]),
    "MVN_prec": ([[0.5, -1.0, 2.0], SPD], lambda m, loc, p: m.MultivariateNormal(loc, precision_matrix=p),
                 [[0.0, 0.0, 1.0], [1.0, -1.0, 2.5]]),
    "Independent_Normal": ([[[0.0, 1.5], [-2.0, 1.0]], [[1.0, 0.5], [2.5, 0.7]]],
                           lambda m, a, b: m.Independent(m.Normal(a, b), 1), [[0.3, 1.0], [-1.0, 0.0]]),
    "Cauchy": ([[0.0, 1.5, -2.0], [1.0, 0.5, 2.5]], lambda m, a, b: m.Cauchy(a, b), [0.3, 1.0, -4.0]),
    "HalfNormal": ([[1.0, 0.5, 2.5]], lambda m, s: m.HalfNormal(s), [0.3, 1.0, 4.0]),
    "Chi2": ([[1.0, 3.0, 7.5]], lambda m, df: m.Chi2(df), [0.3, 1.0, 4.0]),
    "Gamma": ([[0.5, 2.0, 7.5], [1.0, 0.5, 3.0]], lambda m, c, r: m.Gamma(c, r), [0.3, 1.0, 2.2]),
    "Beta": ([[0.5, 2.0, 7.5], [1.5, 0.7, 3.0]], lambda m, a, b: m.Beta(a, b), [0.3, 0.9, 0.6]),
    "Dirichlet": ([[[0.5, 2.0, 3.0], [1.5, 0.7, 4.0]]], lambda m, c: m.Dirichlet(c),
                  [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]),
    "Poisson": ([[0.5, 4.0, 25.0]], lambda m, r: m.Poisson(r), [0.0, 3.0, 30.0]),
    "Binomial": ([[0.2, 0.5, 0.9]], lambda m, p: m.Binomial(10, probs=p), [1.0, 5.0, 10.0]),
    "Binomial_logits": ([[-1.0, 0.2, 2.0]], lambda m, lg: m.Binomial(7, logits=lg), [0.0, 3.0, 7.0]),
    "OneHotCategorical": ([[[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]]], lambda m, p: m.OneHotCategorical(probs=p),
                          [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
    "LogNormal": ([[0.0, 0.5, -1.0], [0.3, 0.8, 1.2]], lambda m, a, b: m.LogNormal(a, b), [0.5, 1.0, 3.0]),
    "Transformed_affine_exp": ([[0.0, 0.5, -1.0], [0.3, 0.8, 1.2]],
                               lambda m, a, b: m.TransformedDistribution(
                                   m.Normal(a, b), [m.transforms.AffineTransform(1.0, 2.0), m.transforms.ExpTransform()]),
                               [0.5, 1.0, 3.0]),
    "Transformed_sigmoid": ([[0.0, 0.5, -1.0], [0.3, 0.8, 1.2]],
                            lambda m, a, b: m.TransformedDistribution(m.Normal(a, b), m.transforms.SigmoidTransform()),
                            [0.2, 0.5, 0.9]),
    "Transformed_tanh": ([[0.0, 0.5, -1.0], [0.3, 0.8, 1.2]],
                         lambda m, a, b: m.TransformedDistribution(
                             m.Normal(a, b), m.transforms.ComposeTransform([m.transforms.TanhTransform()])),
                         [-0.7, 0.5, 0.9]),
    "Mixture": ([[0.2, 0.5, 0.3], [[0.0, 1.0], [2.0, -1.0], [-2.0, 0.5]], [[1.0, 0.5], [0.7, 1.5], [0.3, 1.0]]],
                lambda m, w, a, b: m.MixtureSameFamily(m.Categorical(probs=w), m.Independent(m.Normal(a, b), 1)),
                [[0.3, 1.0], [-1.0, 0.0]]),
}
NO_ENTROPY = {"Poisson", "Transformed_affine_exp", "Transformed_sigmoid", "Transformed_tanh", "Mixture"}
NO_RSAMPLE_HERE = {"Beta", "Dirichlet"}  # limitation: torch reparameterises them, the engine does not


def _value(torch, v, discrete):
    dtype = np.int64 if discrete else np.float64
    return engine.tensor(np.asarray(v, dtype=dtype)), torch.tensor(np.asarray(v, dtype=dtype))


@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_entropy_moments_and_grads_match_torch(torch, name):
    params, build, value = CASES[name]
    ep, tp = _pair(torch, params)
    ed, td = build(D, *ep), build(torch.distributions, *tp)
    assert tuple(ed.batch_shape) == tuple(td.batch_shape)
    assert tuple(ed.event_shape) == tuple(td.event_shape)
    assert ed.has_rsample == (td.has_rsample and name not in NO_RSAMPLE_HERE)
    ev, tv = _value(torch, value, name.startswith("Categorical"))
    elp, tlp = ed.log_prob(ev), td.log_prob(tv)
    _close(elp, tlp)
    if name in NO_ENTROPY:  # torch has no entropy for these either
        with pytest.raises(NotImplementedError):
            td.entropy()
        with pytest.raises(NotImplementedError):
            ed.entropy()
        ee, te = elp * 0, tlp * 0
    else:
        ee, te = ed.entropy(), td.entropy()
    _close(ee, te)
    for attr in ("mean", "variance", "stddev", "mode"):
        try:
            expected = getattr(td, attr)
        except NotImplementedError:
            continue
        if name == "Mixture" and attr != "mean" and attr != "variance":
            continue
        _close(getattr(ed, attr), expected)
    (elp.sum() + ee.sum()).backward()
    (tlp.sum() + te.sum()).backward()
    for e, t in zip(ep, tp, strict=True):
        _close(e.grad, t.grad, 1e-9)


@pytest.mark.parametrize("name", ["Normal", "Uniform", "Exponential", "Laplace", "Cauchy", "HalfNormal"])
def test_cdf_and_icdf_match_torch(torch, name):
    params, build, value = CASES[name]
    ep, tp = _pair(torch, params)
    ed, td = build(D, *ep), build(torch.distributions, *tp)
    ev, tv = _value(torch, value, False)
    if name == "Uniform":
        ev, tv = _value(torch, [0.5, 0.0, 2.1], False)
    _close(ed.cdf(ev), td.cdf(tv))
    q = [0.1, 0.5, 0.8]
    eq, tq = engine.tensor(q, dtype=F64, requires_grad=True), torch.tensor(q, dtype=torch.float64, requires_grad=True)
    ei, ti = ed.icdf(eq), td.icdf(tq)
    _close(ei, ti)
    ei.sum().backward()
    ti.sum().backward()
    _close(eq.grad, tq.grad, 1e-9)


@pytest.mark.parametrize("name", ["Normal", "Uniform", "Exponential", "Laplace", "MVN_cov", "MVN_tril",
                                  "Independent_Normal"])
def test_rsample_is_differentiable_with_torchs_pathwise_gradient(torch, name):
    params, build, _ = CASES[name]
    ep, tp = _pair(torch, params)
    ed, td = build(D, *ep), build(torch.distributions, *tp)
    engine.manual_seed(0)
    x = ed.rsample((5,))
    assert tuple(x.shape) == (5, *tuple(td.batch_shape), *tuple(td.event_shape))
    # the pathwise gradient of a reparameterised draw: rebuild the same draw in torch from its noise
    with engine.no_grad():
        eps = _noise(ed, name, x)
    tx = _from_noise(td, name, torch.tensor(eps.numpy()))
    _close(x, tx, 1e-9)
    (x ** 2).sum().backward()
    (tx ** 2).sum().backward()
    for e, t in zip(ep, tp, strict=True):
        _close(e.grad, t.grad, 1e-8)


def _noise(d, name, x):
    if name in ("Normal", "Independent_Normal"):
        base = d.base_dist if name.startswith("Independent") else d
        return (x - base.loc) / base.scale
    if name == "Uniform":
        return (x - d.low) / (d.high - d.low)
    if name == "Exponential":
        return x * d.rate
    if name == "Laplace":
        return (x - d.loc) / d.scale
    return engine.linalg.solve_triangular(d.scale_tril.expand((*tuple(x.shape), 3)), (x - d.loc).unsqueeze(-1),
                                          upper=False).squeeze(-1)


def _from_noise(d, name, eps):
    import torch

    if name in ("Normal", "Independent_Normal"):
        base = d.base_dist if name.startswith("Independent") else d
        return base.loc + eps * base.scale
    if name == "Uniform":
        return d.low + eps * (d.high - d.low)
    if name == "Exponential":
        return eps / d.rate
    if name == "Laplace":
        return d.loc + eps * d.scale
    return d.loc + torch.matmul(d.scale_tril, eps.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("name", list(CASES))
def test_sample_shapes_and_moments(torch, name):
    params, build, _ = CASES[name]
    ep, _tp = _pair(torch, params)
    ed = build(D, *ep)
    engine.manual_seed(1234)
    x = ed.sample((20000,))
    assert tuple(x.shape) == (20000, *tuple(ed.batch_shape), *tuple(ed.event_shape))
    assert not x.requires_grad
    assert tuple(ed.sample().shape) == tuple(ed.batch_shape) + tuple(ed.event_shape)
    assert tuple(ed.sample((2, 3)).shape) == (2, 3, *tuple(ed.batch_shape), *tuple(ed.event_shape))
    data = x.numpy().astype(np.float64)
    if name in ("Transformed_affine_exp", "Transformed_sigmoid", "Transformed_tanh", "Cauchy"):
        assert bool(ed.support.check(x).all())
        return
    if name.startswith("Categorical"):
        probs = ed.probs.detach().numpy()
        freq = np.stack([(data == k).mean(0) for k in range(probs.shape[-1])], -1)
        np.testing.assert_allclose(freq, probs, atol=0.02)
        return
    mean, var = ed.mean.detach().numpy(), ed.variance.detach().numpy()
    np.testing.assert_allclose(data.mean(0), mean, atol=0.05 * np.sqrt(var).max() + 0.02)
    np.testing.assert_allclose(data.var(0), var, rtol=0.08, atol=0.02)
    assert bool(ed.support.check(x).all())


def test_sample_is_reproducible_with_manual_seed():
    d = D.Normal(engine.zeros(3), engine.ones(3))
    engine.manual_seed(7)
    a = d.sample((4,))
    engine.manual_seed(7)
    assert engine.equal(a, d.sample((4,)))


KL_CASES: dict[str, Any] = {
    "Normal": ("Normal", [[0.0, 1.0], [1.0, 2.0]], [[1.0, -1.0], [0.5, 1.5]]),
    "Bernoulli": ("Bernoulli_probs", [[0.2, 0.7]], [[0.5, 0.1]]),
    "Categorical": ("Categorical_probs", [[[0.2, 0.3, 0.5]]], [[[0.6, 0.1, 0.3]]]),
    "Exponential": ("Exponential", [[0.5, 2.0]], [[1.5, 0.3]]),
    "Laplace": ("Laplace", [[0.0, 1.0], [1.0, 2.0]], [[1.0, -1.0], [0.5, 1.5]]),
    "Uniform": ("Uniform", [[0.0, 1.0], [1.0, 2.0]], [[-1.0, 0.5], [1.5, 1.5]]),
    "MVN": ("MVN_tril", [[0.5, -1.0, 2.0], TRIL], [[0.0, 0.0, 1.0], np.array(SPD)]),
    "Gamma": ("Gamma", [[0.5, 2.0], [1.0, 3.0]], [[1.5, 0.7], [2.0, 0.4]]),
    "Beta": ("Beta", [[0.5, 2.0], [1.0, 3.0]], [[1.5, 0.7], [2.0, 0.4]]),
    "Dirichlet": ("Dirichlet", [[[0.5, 2.0, 3.0]]], [[[1.5, 0.7, 1.0]]]),
    "OneHotCategorical": ("OneHotCategorical", [[[0.2, 0.3, 0.5]]], [[[0.6, 0.1, 0.3]]]),
    "Poisson": ("Poisson", [[0.5, 4.0]], [[2.0, 3.0]]),
    "Binomial": ("Binomial", [[0.2, 0.7]], [[0.5, 0.4]]),
    "LogNormal": ("LogNormal", [[0.0, 1.0], [1.0, 2.0]], [[1.0, -1.0], [0.5, 1.5]]),
    "Independent": ("Independent_Normal", [[[0.0, 1.5]], [[1.0, 0.5]]], [[[0.3, 1.0]], [[2.0, 0.7]]]),
}


@pytest.mark.parametrize("name", list(KL_CASES))
def test_kl_divergence_and_its_gradient_match_torch(torch, name):
    case, p_params, q_params = KL_CASES[name]
    build = CASES[case][1]
    if name == "MVN":
        q_params = [q_params[0], np.linalg.cholesky(q_params[1])]
    ep, tp = _pair(torch, p_params)
    eq, tq = _pair(torch, q_params)
    ekl = D.kl_divergence(build(D, *ep), build(D, *eq))
    tkl = torch.distributions.kl_divergence(build(torch.distributions, *tp), build(torch.distributions, *tq))
    _close(ekl, tkl)
    if name == "Uniform":  # the inf entries have no gradient to compare
        return
    ekl.sum().backward()
    tkl.sum().backward()
    for e, t in zip(ep + eq, tp + tq, strict=True):
        _close(e.grad, t.grad, 1e-9)


def test_kl_uniform_outside_support_is_inf():
    p, q = D.Uniform(engine.tensor([0.0]), engine.tensor([2.0])), D.Uniform(engine.tensor([0.5]), engine.tensor([1.0]))
    assert np.isinf(D.kl_divergence(p, q).numpy()).all()


def test_register_kl_dispatches_to_most_specific_and_errors_when_missing():
    class MyNormal(D.Normal):
        pass

    p, q = MyNormal(engine.tensor(0.0), engine.tensor(1.0)), D.Normal(engine.tensor(1.0), engine.tensor(1.0))
    assert float(D.kl_divergence(p, q)) == pytest.approx(0.5)

    @D.register_kl(MyNormal, D.Normal)
    def _kl(p, q):
        return engine.tensor(42.0)

    assert float(D.kl_divergence(p, q)) == 42.0
    assert float(D.kl_divergence(q, p)) == pytest.approx(0.5)
    with pytest.raises(NotImplementedError, match="No KL"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Exponential(1.0))


def test_parameter_validation_errors_match_torch(torch):
    with pytest.raises(ValueError, match=r"Expected parameter scale \(Tensor of shape \(2,\)\) of distribution "
                                         r"Normal\(loc: engine.Size\(\[2\]\), scale: engine.Size\(\[2\]\)\) to "
                                         r"satisfy the constraint GreaterThan\(lower_bound=0.0\)"):
        D.Normal(engine.zeros(2), engine.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match=re.escape("Either `probs` or `logits` must be specified, but not both.")):
        D.Bernoulli(probs=engine.tensor(0.3), logits=engine.tensor(0.1))
    with pytest.raises(ValueError, match=re.escape("Either `probs` or `logits` must be specified, but not both.")):
        D.Categorical()
    with pytest.raises(ValueError, match="constraint Interval"):
        D.Bernoulli(probs=engine.tensor([1.5]))
    with pytest.raises(ValueError, match="Uniform is not defined when low>= high"):
        D.Uniform(engine.tensor([1.0]), engine.tensor([0.0]))
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix or precision_matrix or scale_tril"):
        D.MultivariateNormal(engine.zeros(2))
    with pytest.raises(ValueError, match=re.escape("loc must be at least one-dimensional.")):
        D.MultivariateNormal(engine.tensor(0.0), scale_tril=engine.eye(1))
    with pytest.raises(ValueError, match="constraint PositiveDefinite"):
        D.MultivariateNormal(engine.zeros(2), covariance_matrix=engine.tensor([[1.0, 2.0], [2.0, 1.0]]))
    # validation can be switched off per instance
    D.Normal(engine.zeros(1), engine.tensor([-1.0]), validate_args=False)


def test_sample_validation_errors():
    d = D.Normal(engine.zeros(3), engine.ones(3))
    with pytest.raises(ValueError, match="The value argument to log_prob must be a Tensor"):
        d.log_prob(0.5)
    with pytest.raises(ValueError, match="Value is not broadcastable with batch_shape\\+event_shape"):
        d.log_prob(engine.zeros(4))
    mvn = D.MultivariateNormal(engine.zeros(3), scale_tril=engine.eye(3))
    with pytest.raises(ValueError, match="The right-most size of value must match event_shape"):
        mvn.log_prob(engine.zeros(2))
    with pytest.raises(ValueError, match=r"Expected value argument \(Tensor of shape \(1,\)\) to be within the "
                                         r"support \(Boolean\(\)\) of the distribution"):
        D.Bernoulli(probs=engine.tensor([0.3])).log_prob(engine.tensor([0.5]))
    with pytest.raises(ValueError, match="to be within the support"):
        D.Exponential(engine.ones(1)).log_prob(engine.tensor([-1.0]))


def test_expand_keeps_parameters_and_broadcasts(torch):
    d = D.Normal(engine.tensor([0.0, 1.0]), engine.tensor([1.0, 2.0])).expand((3, 2))
    assert tuple(d.batch_shape) == (3, 2)
    assert tuple(d.sample().shape) == (3, 2)
    c = D.Categorical(probs=engine.tensor([0.2, 0.8])).expand((4,))
    assert tuple(c.batch_shape) == (4,) and tuple(c.logits.shape) == (4, 2)
    m = D.MultivariateNormal(engine.zeros(2), scale_tril=engine.eye(2)).expand((5,))
    assert tuple(m.sample().shape) == (5, 2)
    i = D.Independent(D.Normal(engine.zeros(3, 2), engine.ones(3, 2)), 1).expand((4, 3))
    assert tuple(i.batch_shape) == (4, 3) and tuple(i.event_shape) == (2,)


def test_constraints_check_like_torch(torch):
    C, TC = D.constraints, torch.distributions.constraints
    vals = [[-1.0, 0.0, 0.5, 1.0, 2.0, float("nan")]]
    for name in ("real", "positive", "nonnegative", "unit_interval", "boolean", "nonnegative_integer"):
        e = getattr(C, name).check(engine.tensor(vals)).numpy()
        t = getattr(TC, name).check(torch.tensor(vals)).numpy()
        np.testing.assert_array_equal(e, t, err_msg=name)
    s = [[0.2, 0.8], [0.5, 0.6], [-0.1, 1.1]]
    np.testing.assert_array_equal(C.simplex.check(engine.tensor(s)).numpy(), TC.simplex.check(torch.tensor(s)).numpy())
    ii = C.integer_interval(0, 3).check(engine.tensor([0.0, 3.0, 4.0, 1.5])).numpy()
    np.testing.assert_array_equal(ii, [True, True, False, False])
    assert repr(C.integer_interval(0, 3)) == repr(TC.integer_interval(0, 3))
    assert repr(C.positive) == repr(TC.positive) and repr(C.real_vector) == repr(TC.real_vector)
    assert D.Normal.arg_constraints["scale"] is C.positive
    assert C.is_dependent(D.Uniform.arg_constraints["low"])


def test_enumerate_support_and_perplexity(torch):
    c = D.Categorical(probs=engine.tensor([[0.2, 0.8], [0.5, 0.5]]))
    tc = torch.distributions.Categorical(probs=torch.tensor([[0.2, 0.8], [0.5, 0.5]]))
    np.testing.assert_array_equal(c.enumerate_support().numpy(), tc.enumerate_support().numpy())
    b = D.Bernoulli(probs=engine.tensor([0.3]))
    np.testing.assert_array_equal(b.enumerate_support(expand=False).numpy(), [[0.0], [1.0]])
    _close(c.perplexity(), tc.perplexity(), 1e-6)


def test_special_functions_and_their_gradients_match_torch(torch):
    from engine.ops.special import digamma, lgamma, polygamma

    v = [1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 3.7, 12.3, 150.0, 1e4, -0.5, -2.3]
    for fn, tfn in ((lgamma, torch.lgamma), (digamma, torch.digamma)):
        x = engine.tensor(v, dtype=F64, requires_grad=True)
        tx = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        y, ty = fn(x), tfn(tx)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        y.sum().backward()
        ty.sum().backward()
        # NOTE: torch's trigamma (the gradient of digamma) is itself only ~5e-10 accurate
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    tv = torch.tensor(v, dtype=torch.float64)
    np.testing.assert_allclose(polygamma(1, engine.tensor(v, dtype=F64)).numpy(), torch.polygamma(1, tv).numpy(),
                               rtol=1e-8)
    assert float(polygamma(1, engine.tensor([1.0], dtype=F64))) == pytest.approx(np.pi ** 2 / 6, rel=1e-13)
    assert np.isinf(lgamma(engine.tensor([0.0, -2.0])).numpy()).all()
    assert lgamma(engine.tensor([2.5])).dtype == engine.float32
    from engine.ops.special import erfinv

    q = [-0.999, -0.9, -0.3, 0.0, 0.5, 0.99]
    np.testing.assert_allclose(erfinv(engine.tensor(q, dtype=F64)).numpy(),
                               torch.erfinv(torch.tensor(q, dtype=torch.float64)).numpy(), rtol=1e-12, atol=1e-14)


def test_gamma_rsample_gradient_is_the_implicit_reparameterisation(torch):
    conc = engine.tensor([0.3, 1.0, 2.5, 7.0, 40.0], dtype=F64, requires_grad=True)
    rate = engine.tensor([1.0, 2.0, 0.5, 3.0, 1.5], dtype=F64, requires_grad=True)
    engine.manual_seed(3)
    x = D.Gamma(conc, rate).rsample((200,))
    x.sum().backward()
    standard = torch.tensor((x * rate).detach().numpy())
    tconc = torch.tensor(conc.detach().numpy()).expand(200, 5)
    trate = torch.tensor(rate.detach().numpy())
    dconc = (torch._standard_gamma_grad(tconc, standard) / trate).sum(0)
    drate = (-standard / trate ** 2).sum(0)
    # torch's _standard_gamma_grad is a fitted approximation (~2e-4 relative); the engine's is exact
    np.testing.assert_allclose(conc.grad.numpy(), dconc.numpy(), rtol=5e-4)
    np.testing.assert_allclose(rate.grad.numpy(), drate.numpy(), rtol=1e-10)


def test_gamma_implicit_gradient_against_finite_differences_of_the_cdf():
    from engine.distributions._gamma_ops import standard_gamma_grad_array

    alpha = np.array([0.3, 1.0, 2.5, 7.0, 20.0, 0.3, 3.0, 150.0])
    x = np.array([0.05, 0.9, 4.0, 3.0, 25.0, 3.0, 12.0, 140.0])
    # reference: -(dP/dalpha) / pdf, P(a, x) = sum_n x^(a+n) e^-x / Gamma(a+n+1) summed in plain Python
    from math import exp, fsum, lgamma, log

    def cdf(a, xv):
        return fsum(exp((a + n) * log(xv) - xv - lgamma(a + n + 1)) for n in range(2000))

    h = 1e-5
    expected = [-(cdf(a + h, xv) - cdf(a - h, xv)) / (2 * h) / exp((a - 1) * log(xv) - xv - lgamma(a))
                for a, xv in zip(alpha, x, strict=True)]
    np.testing.assert_allclose(standard_gamma_grad_array(alpha, x, np), expected, rtol=1e-6)


def test_beta_and_dirichlet_have_no_rsample_here():
    with pytest.raises(NotImplementedError):
        D.Beta(engine.tensor([1.0]), engine.tensor([2.0])).rsample()
    with pytest.raises(NotImplementedError):
        D.Dirichlet(engine.tensor([1.0, 2.0])).rsample()
    assert tuple(D.Dirichlet(engine.tensor([1.0, 2.0])).sample((3,)).shape) == (3, 2)


@pytest.mark.parametrize("make", [
    lambda m: m.transforms.ExpTransform(),
    lambda m: m.transforms.SigmoidTransform(),
    lambda m: m.transforms.TanhTransform(),
    lambda m: m.transforms.SoftplusTransform(),
    lambda m: m.transforms.AffineTransform(0.5, -2.0),
    lambda m: m.transforms.ComposeTransform([m.transforms.AffineTransform(0.5, 3.0), m.transforms.ExpTransform()]),
    lambda m: m.transforms.ExpTransform().inv,
])
def test_transforms_match_torch(torch, make):
    et, tt = make(D), make(torch.distributions)
    vals = [0.1, 0.4, 0.7] if "Inverse" in type(et).__name__ else [-1.5, 0.2, 0.7]
    x = engine.tensor(vals, dtype=F64, requires_grad=True)
    tx = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
    y, ty = et(x), tt(tx)
    _close(y, ty)
    _close(et.inv(y), tt.inv(ty))
    j, tj = et.log_abs_det_jacobian(x, y), tt.log_abs_det_jacobian(tx, ty)
    _close(j, tj, 1e-9)
    (y.sum() + j.sum()).backward()
    (ty.sum() + tj.sum()).backward()
    _close(x.grad, tx.grad, 1e-9)
    assert et.bijective == tt.bijective
    assert repr(et.domain) == repr(tt.domain) and repr(et.codomain) == repr(tt.codomain)


def test_transform_cache_returns_the_original_input():
    t = D.transforms.ExpTransform().with_cache(1)
    x = engine.tensor([0.5])
    assert t.inv(t(x)) is x
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        D.transforms.ExpTransform(cache_size=2)


def test_transformed_distribution_rsample_gradient_matches_torch(torch):
    ep, tp = _pair(torch, [[0.1, -0.4], [0.5, 1.3]])
    ed = D.TransformedDistribution(D.Normal(*ep), [D.transforms.AffineTransform(1.0, 2.0),
                                                    D.transforms.TanhTransform()])
    td = torch.distributions.TransformedDistribution(torch.distributions.Normal(*tp), [
        torch.distributions.transforms.AffineTransform(1.0, 2.0), torch.distributions.transforms.TanhTransform()])
    engine.manual_seed(0)
    y = ed.rsample((4,))
    eps = torch.tensor(((0.5 * (y.log1p() - (-y).log1p()) - 1.0) / 2.0 - ep[0]).detach().numpy()
                       / ep[1].detach().numpy())
    ty = torch.tanh(1.0 + 2.0 * (tp[0] + eps * tp[1]))
    _close(y, ty, 1e-8)
    ed.log_prob(y.detach()).sum().backward()
    td.log_prob(ty.detach()).sum().backward()
    for e, t in zip(ep, tp, strict=True):
        _close(e.grad, t.grad, 1e-7)


def test_categorical_and_mixture_errors():
    with pytest.raises(ValueError, match=re.escape("`probs` parameter must be at least one-dimensional.")):
        D.Categorical(probs=engine.tensor(0.5))
    with pytest.raises(ValueError, match="constraint Simplex"):
        D.Categorical(probs=engine.tensor([0.5, -0.2]))
    with pytest.raises(ValueError, match="The Mixture distribution needs to be an  instance"):
        D.MixtureSameFamily(D.Normal(0.0, 1.0), D.Normal(engine.zeros(2), engine.ones(2)))
    with pytest.raises(ValueError, match="does not equal"):
        D.MixtureSameFamily(D.Categorical(probs=engine.ones(3)), D.Normal(engine.zeros(2), engine.ones(2)))
    with pytest.raises(ValueError, match=re.escape("`concentration` parameter must be at least one-dimensional.")):
        D.Dirichlet(engine.tensor(1.0))

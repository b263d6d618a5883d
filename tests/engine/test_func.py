"""engine.func and engine.autograd.functional against torch.func / torch.autograd.functional."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import func as F

# torch's forward-mode transforms (the oracle side) script a helper on first use and warn about it
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
RNG = np.random.default_rng(3)
X = RNG.standard_normal(4)
Y = RNG.standard_normal((3, 4))


def _e(a, **kw):
    return engine.tensor(a, dtype=engine.float64, **kw)


def _close(e, t, rtol=1e-9, atol=1e-11):
    if isinstance(t, (tuple, list)):
        assert isinstance(e, (tuple, list)) and len(e) == len(t)
        for a, b in zip(e, t, strict=True):
            _close(a, b, rtol, atol)
    elif isinstance(t, dict):
        assert sorted(e) == sorted(t)
        for k in t:
            _close(e[k], t[k], rtol, atol)
    else:
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def scalar_fn(m):
    return lambda x, y: ((x.sin() * y).sum(-1) ** 2).sum() + (x * x).sum()


def vector_fn(m):
    return lambda x, y: (y @ x).tanh() * x[:3].exp()


# name: (build the transformed function for a module namespace m, inputs)
TRANSFORMS = {
    "grad": (lambda m: m.func.grad(scalar_fn(m)), (X, Y)),
    "grad_argnums": (lambda m: m.func.grad(scalar_fn(m), argnums=(0, 1)), (X, Y)),
    "grad_and_value": (lambda m: m.func.grad_and_value(scalar_fn(m), argnums=1), (X, Y)),
    "jacrev": (lambda m: m.func.jacrev(vector_fn(m)), (X, Y)),
    "jacrev_argnums": (lambda m: m.func.jacrev(vector_fn(m), argnums=(0, 1)), (X, Y)),
    "jacfwd": (lambda m: m.func.jacfwd(vector_fn(m), argnums=1), (X, Y)),
    "hessian": (lambda m: m.func.hessian(scalar_fn(m)), (X, Y)),
    "hessian_argnums": (lambda m: m.func.hessian(scalar_fn(m), argnums=(0, 1)), (X, Y)),
    "jacfwd_of_grad": (lambda m: m.func.jacfwd(m.func.grad(scalar_fn(m), argnums=1), argnums=0), (X, Y)),
    "vmap": (lambda m: m.func.vmap(lambda x, y: (x * y).sum() + y.max(), in_dims=(None, 0)), (X, Y)),
    "vmap_in_dim_1_out_dim_1": (lambda m: m.func.vmap(lambda x, y: x * y, in_dims=(None, 1), out_dims=1),
                                (X[:3], Y)),
    "vmap_grad_per_sample": (lambda m: m.func.vmap(m.func.grad(scalar_fn(m)), in_dims=(None, 0)),
                             (X, Y[:, None, :])),
    "vmap_tuple_out": (lambda m: m.func.vmap(lambda y: (y.sum(), y * 2), out_dims=(0, 1)), (Y,)),
    "nested_vmap": (lambda m: m.func.vmap(m.func.vmap(lambda a, b: a * b, in_dims=(0, None)), in_dims=(None, 0)),
                    (X, Y)),
    "vmap_jacrev": (lambda m: m.func.vmap(m.func.jacrev(lambda y: y.sin() * y.sum())), (Y,)),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transform_matches_torch_func(torch, name):
    make, arrays = TRANSFORMS[name]
    got = make(engine)(*[_e(a) for a in arrays])
    want = make(torch)(*[torch.tensor(a, dtype=torch.float64) for a in arrays])
    _close(got, want)


def test_vjp_and_jvp_match_torch(torch):
    fn = vector_fn(None)
    out_e, vjp_e = F.vjp(fn, _e(X), _e(Y))
    out_t, vjp_t = torch.func.vjp(fn, torch.tensor(X), torch.tensor(Y))
    _close(out_e, out_t)
    cot = RNG.standard_normal(3)
    _close(vjp_e(_e(cot)), vjp_t(torch.tensor(cot)))
    _close(vjp_e(_e(cot * 2)), vjp_t(torch.tensor(cot * 2)))  # the vjp function can be called again
    tx, ty = RNG.standard_normal(4), RNG.standard_normal((3, 4))
    got = F.jvp(fn, (_e(X), _e(Y)), (_e(tx), _e(ty)))
    want = torch.func.jvp(fn, (torch.tensor(X), torch.tensor(Y)), (torch.tensor(tx), torch.tensor(ty)))
    _close(got, want)
    assert not got[0].requires_grad and not got[1].requires_grad


def test_has_aux_and_pytree_inputs(torch):
    def loss(p, x):
        out = (p["w"] * x).sum() + p["b"][0]
        return out ** 2, {"out": out}

    p_e = {"w": _e(X), "b": _e([0.5])}
    p_t = {"w": torch.tensor(X), "b": torch.tensor([0.5], dtype=torch.float64)}
    g_e, aux_e = F.grad(loss, has_aux=True)(p_e, _e(X))
    g_t, aux_t = torch.func.grad(loss, has_aux=True)(p_t, torch.tensor(X))
    _close(g_e, g_t)
    _close(aux_e, aux_t)
    assert not aux_e["out"].requires_grad


def test_errors_match_torch_wording():
    with pytest.raises(RuntimeError, match="Expected f\\(\\*args\\) to return a scalar Tensor"):
        F.grad(lambda x: x * 2)(_e(X))
    with pytest.raises(ValueError, match="same size in the mapped dimension"):
        F.vmap(lambda a, b: a + b)(_e(X), _e(Y))
    with pytest.raises(ValueError, match="at least one input must be batched"):
        F.vmap(lambda a: a, in_dims=None)(_e(X))
    with pytest.raises(ValueError, match="We cannot vmap over non-Tensor arguments"):
        F.vmap(lambda a, n: a * n)(_e(X), 3)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        F.vmap(lambda a: a + engine.rand(()))(_e(X))
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        F.vmap(lambda a: a, randomness="sometimes")


def test_vmap_randomness_same_and_different():
    engine.manual_seed(0)
    same = F.vmap(lambda a: a * 0 + engine.rand(()), randomness="same")(_e(X))
    assert np.unique(same.numpy()).size == 1
    different = F.vmap(lambda a: a * 0 + engine.rand(()), randomness="different")(_e(X))
    assert np.unique(different.numpy()).size == 4
    empty = F.vmap(lambda a: a.sum(0), in_dims=1)(engine.zeros(3, 0))
    assert tuple(empty.shape) == (0,)


def test_functional_call_swaps_and_restores(torch):
    model = engine.nn.Sequential(engine.nn.Linear(4, 3), engine.nn.BatchNorm1d(3)).double()
    state = {k: v.detach().clone() * 2 for k, v in model.state_dict().items()}
    x = _e(Y)
    out = F.functional_call(model, state, (x,))
    reference = engine.nn.Sequential(engine.nn.Linear(4, 3), engine.nn.BatchNorm1d(3)).double()
    reference.load_state_dict(state)
    _close(out, reference(x))
    assert model[0].weight is model._modules["0"]._parameters["weight"]
    assert isinstance(model[0].weight, engine.nn.Parameter)
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'nope'"):
        F.functional_call(model, {**state, "nope": x}, (x,), strict=True)
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        F.functional_call(model, ({"0.bias": x}, {"0.bias": x}), (x,))


def test_model_ensembling_matches_torch(torch):
    def models(m):
        m.manual_seed(0)
        return [m.nn.Sequential(m.nn.Linear(4, 8), m.nn.ReLU(), m.nn.Linear(8, 2)).double() for _ in range(3)]

    def ensemble(m, ms, x):
        params, buffers = m.func.stack_module_state(ms)
        assert params["0.weight"].shape == (3, 8, 4) and params["0.weight"].requires_grad
        call = lambda p, b, data: m.func.functional_call(ms[0], (p, b), (data,))  # noqa: E731
        return m.func.vmap(call, in_dims=(0, 0, None))(params, buffers, x)

    e_models, t_models = models(engine), models(torch)
    for e_m, t_m in zip(e_models, t_models, strict=True):
        t_m.load_state_dict({k: torch.tensor(v.numpy()) for k, v in e_m.state_dict().items()})
    _close(ensemble(engine, e_models, _e(Y)), ensemble(torch, t_models, torch.tensor(Y)))
    with pytest.raises(RuntimeError, match="at least one model"):
        F.stack_module_state([])


def test_per_sample_gradients_match_torch(torch):
    def run(m, model, x, y):
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss(p, xi, yi):
            return m.nn.functional.mse_loss(m.func.functional_call(model, p, (xi[None],)), yi[None])

        return m.func.vmap(m.func.grad(loss), in_dims=(None, 0, 0))(params, x, y)

    e_model = engine.nn.Linear(4, 2).double()
    t_model = torch.nn.Linear(4, 2).double()
    t_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in e_model.state_dict().items()})
    target = RNG.standard_normal((3, 2))
    _close(run(engine, e_model, _e(Y), _e(target)), run(torch, t_model, torch.tensor(Y), torch.tensor(target)))


AF = {
    "jacobian": (lambda m: lambda f, x: m.autograd.functional.jacobian(f, x), vector_fn),
    "hessian": (lambda m: lambda f, x: m.autograd.functional.hessian(f, x), scalar_fn),
}


@pytest.mark.parametrize("name", sorted(AF))
def test_autograd_functional_jacobian_hessian(torch, name):
    make, fn = AF[name]
    got = make(engine)(fn(None), (_e(X), _e(Y)))
    want = make(torch)(fn(None), (torch.tensor(X), torch.tensor(Y)))
    _close(got, want)
    single = make(engine)(lambda x: fn(None)(x, _e(Y)), _e(X))
    _close(single, make(torch)(lambda x: fn(None)(x, torch.tensor(Y)), torch.tensor(X)))


def test_autograd_functional_products(torch):
    AFe, AFt = engine.autograd.functional, torch.autograd.functional
    s = scalar_fn(None)
    v = RNG.standard_normal(4)
    for name in ("vjp", "jvp", "vhp", "hvp"):
        args_e = (_e(X), _e(Y))
        args_t = (torch.tensor(X), torch.tensor(Y))
        vs_e = (_e(v), _e(Y * 0.5))
        vs_t = (torch.tensor(v), torch.tensor(Y * 0.5))
        if name == "vjp":
            vs_e, vs_t = None, None
        _close(getattr(AFe, name)(s, args_e, vs_e), getattr(AFt, name)(s, args_t, vs_t))
    _close(AFe.vjp(vector_fn(None), (_e(X), _e(Y)), _e(v[:3])),
           AFt.vjp(vector_fn(None), (torch.tensor(X), torch.tensor(Y)), torch.tensor(v[:3])))
    _, prod = AFe.vhp(lambda x: (x ** 3).sum(), _e(X, requires_grad=True), _e(v), create_graph=True)
    assert prod.requires_grad
    prod.sum().backward()


def test_linearize_and_batch_norm_replacement_match_torch(torch):
    fn = vector_fn(None)
    tangents = (RNG.standard_normal(4), RNG.standard_normal((3, 4)))
    out_e, jvp_e = F.linearize(fn, _e(X), _e(Y))
    # torch.func.linearize traces with torch.fx (it warns here); its documented result is jvp's
    out_t, jvp_t = torch.func.jvp(fn, (torch.tensor(X), torch.tensor(Y)), tuple(torch.tensor(t) for t in tangents))
    _close(out_e, out_t)
    _close(jvp_e(*[_e(t) for t in tangents]), jvp_t)
    net = engine.nn.Sequential(engine.nn.Linear(4, 3), engine.nn.BatchNorm1d(3))
    F.replace_all_batch_norm_modules_(net)
    assert net[1].running_mean is None and not net[1].track_running_stats
    x = engine.randn(5, 4)
    assert tuple(F.vmap(lambda xs: net(xs), in_dims=1, out_dims=1)(x[:, None].expand(5, 2, 4)).shape) == (5, 2, 3)
    assert F.functionalize(fn)(_e(X), _e(Y)).allclose(fn(_e(X), _e(Y)))

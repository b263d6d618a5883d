"""ASGD, Adadelta, Adafactor, Adamax, NAdam, RAdam, Rprop against torch.optim: float64 params after
20 steps, the state dict layout, a mid-run state dict round trip, the flags PyTorch accepts."""

from __future__ import annotations

import inspect
import io

import numpy as np
import pytest
from optim_models import as_numpy, engine_loss, engine_params, groups, torch_loss, torch_params

import engine
from engine import nn

CASES = [
    ("ASGD", {}, None),
    ("ASGD", {"lr": 0.05, "lambd": 1e-3, "alpha": 0.5, "t0": 5, "weight_decay": 0.1}, None),
    ("ASGD", {"lr": 0.05, "t0": 3, "maximize": True}, {"lr": 0.01}),
    ("Adadelta", {}, None),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1}, {"rho": 0.95}),
    ("Adadelta", {"maximize": True}, None),
    ("Adafactor", {}, None),
    ("Adafactor", {"lr": 0.05, "beta2_decay": -0.5, "eps": (1e-20, 1e-2), "d": 1.5, "weight_decay": 0.1}, None),
    ("Adafactor", {"maximize": True}, {"lr": 0.001}),
    ("Adamax", {}, None),
    ("Adamax", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, {"lr": 0.001}),
    ("Adamax", {"maximize": True}, None),
    ("NAdam", {}, None),
    ("NAdam", {"lr": 0.01, "momentum_decay": 1e-2, "weight_decay": 0.1}, None),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}, {"betas": (0.8, 0.9)}),
    ("NAdam", {"maximize": True}, None),
    ("RAdam", {}, None),
    ("RAdam", {"lr": 0.01, "betas": (0.5, 0.9), "weight_decay": 0.1}, None),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}, {"lr": 0.1}),
    ("Rprop", {}, None),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}, None),
    ("Rprop", {"maximize": True}, {"lr": 0.001}),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]
NAMES = sorted({name for name, _, _ in CASES})


def run_engine(opt, params, steps: range) -> list:
    for k in steps:
        opt.zero_grad()
        engine_loss(params, k).backward()
        opt.step()
    return as_numpy(params)


def run_torch(torch, opt, params, steps: range) -> list:
    for k in steps:
        opt.zero_grad()
        torch_loss(torch, params, k).backward()
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize(("name", "options", "second_group"), CASES, ids=IDS)
def test_matches_torch_over_20_steps(torch, name, options, second_group):
    ours, theirs = engine_params(), torch_params(torch)
    opt = getattr(engine.optim, name)(groups(ours, second_group), **options)
    ref = getattr(torch.optim, name)(groups(theirs, second_group), **options)
    start = as_numpy(ours)
    got, want = run_engine(opt, ours, range(20)), run_torch(torch, ref, theirs, range(20))
    for a, b, a0 in zip(got, want, start, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
        assert np.abs(a - a0).max() > 1e-6  # the parameters moved


@pytest.mark.parametrize(("name", "options", "second_group"), CASES, ids=IDS)
def test_state_dict_layout_matches_torch(torch, name, options, second_group):
    ours, theirs = engine_params(), torch_params(torch)
    opt = getattr(engine.optim, name)(groups(ours, second_group), **options)
    ref = getattr(torch.optim, name)(groups(theirs, second_group), **options)
    run_engine(opt, ours, range(3))
    run_torch(torch, ref, theirs, range(3))
    mine, want = opt.state_dict(), ref.state_dict()
    assert mine["param_groups"] == want["param_groups"]
    assert list(mine["state"]) == list(want["state"])
    for index, state in want["state"].items():
        assert list(mine["state"][index]) == list(state)
        for key, value in state.items():
            np.testing.assert_allclose(np.asarray(mine["state"][index][key]), value.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("name", "options", "second_group"), CASES, ids=IDS)
def test_state_dict_round_trip_mid_run_continues_identically(name, options, second_group):
    params = engine_params()
    opt = getattr(engine.optim, name)(groups(params, second_group), **options)
    run_engine(opt, params, range(8))
    buffer = io.BytesIO()
    engine.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, buffer)
    saved = engine.load(io.BytesIO(buffer.getvalue()))
    resumed = [p.clone().detach().requires_grad_(True) for p in saved["params"]]
    opt2 = getattr(engine.optim, name)(groups(resumed, second_group), **options)
    opt2.load_state_dict(saved["optimizer"])
    for a, b in zip(run_engine(opt, params, range(8, 16)), run_engine(opt2, resumed, range(8, 16)), strict=True):
        if name in ("ASGD", "NAdam"):
            # NOTE: as in PyTorch, loading casts the float32 scalar states (eta, mu, mu_product) to the
            # parameter's dtype, so the resumed run is float64 there: equal to rounding, not bitwise.
            np.testing.assert_allclose(a, b, rtol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_an_engine_state_dict_continues_in_torch(torch, name):
    ours = engine_params()
    opt = getattr(engine.optim, name)(ours)
    run_engine(opt, ours, range(4))
    state = opt.state_dict()
    theirs = [torch.tensor(a, requires_grad=True) for a in as_numpy(ours)]
    ref = getattr(torch.optim, name)(theirs)
    ref.load_state_dict({
        "state": {i: {k: torch.tensor(np.array(v)) for k, v in s.items()} for i, s in state["state"].items()},
        "param_groups": state["param_groups"]})
    for a, b in zip(run_engine(opt, ours, range(4, 8)), run_torch(torch, ref, theirs, range(4, 8)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", [*NAMES, "LBFGS", "SparseAdam", "Muon"])
def test_signature_and_defaults_match_torch(torch, name):
    ours = inspect.signature(getattr(engine.optim, name))
    theirs = inspect.signature(getattr(torch.optim, name))
    assert list(ours.parameters) == list(theirs.parameters)
    for key, parameter in theirs.parameters.items():
        assert ours.parameters[key].kind == parameter.kind, key
        assert ours.parameters[key].default == parameter.default, key
    w = engine.zeros(2, 2, requires_grad=True)
    t = torch.zeros(2, 2, requires_grad=True)
    mine = {k: v for k, v in getattr(engine.optim, name)([w]).param_groups[0].items() if k != "params"}
    want = {k: v for k, v in getattr(torch.optim, name)([t]).param_groups[0].items() if k != "params"}
    assert mine == want


@pytest.mark.parametrize(("name", "options", "message"), [
    ("ASGD", {"lr": -1}, "Invalid learning rate"), ("Adadelta", {"rho": 1.5}, "Invalid rho value"),
    ("Adafactor", {"beta2_decay": 0.5}, "beta2_decay should be <= 0"), ("Adafactor", {"d": 0.5}, "Clipping"),
    ("Adamax", {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0"),
    ("NAdam", {"momentum_decay": -1}, "Invalid momentum_decay"), ("RAdam", {"eps": -1}, "Invalid epsilon"),
    ("Rprop", {"etas": (1.5, 1.2)}, "Invalid eta values"), ("SparseAdam", {"lr": 0}, "Invalid learning rate"),
])
def test_bad_options_are_refused_as_torch_refuses_them(torch, name, options, message):
    with pytest.raises(ValueError, match=message):
        getattr(engine.optim, name)([engine.zeros(2, requires_grad=True)], **options)
    with pytest.raises(ValueError, match=message):
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **options)


@pytest.mark.parametrize("flags", [{"foreach": True}, {"foreach": False}, {"differentiable": False},
                                   {"capturable": False}])
@pytest.mark.parametrize("name", ["ASGD", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop"])
def test_implementation_flags_are_accepted_and_change_nothing(torch, name, flags):
    ours, theirs = engine_params(), torch_params(torch)
    opt = getattr(engine.optim, name)(ours, **flags)
    ref = getattr(torch.optim, name)(theirs, **flags)
    for a, b in zip(run_engine(opt, ours, range(3)), run_torch(torch, ref, theirs, range(3)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    assert opt.param_groups[0] == {**ref.param_groups[0], "params": ours}


def test_sparse_adam_refuses_dense_gradients_as_torch_does(torch):
    w = engine.ones(3, requires_grad=True)
    opt = engine.optim.SparseAdam([w])
    (w * 2).sum().backward()
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        opt.step()
    assert w.tolist() == [1.0, 1.0, 1.0] and not opt.state
    tw = torch.ones(3, requires_grad=True)
    topt = torch.optim.SparseAdam([tw])
    (tw * 2).sum().backward()
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        topt.step()


def test_float32_params_match_torch(torch):
    for name in NAMES:
        ours = [p.float().detach().requires_grad_(True) for p in engine_params()]
        theirs = [p.float().detach().requires_grad_(True) for p in torch_params(torch)]
        opt, ref = getattr(engine.optim, name)(ours), getattr(torch.optim, name)(theirs)
        for k in range(10):
            opt.zero_grad()
            ref.zero_grad()
            w1, b1, w2 = ours
            x = np.full((2, 4), 0.1 * k, np.float32)
            ((engine.tensor(x) @ w1 + b1).tanh() @ w2).pow(2).mean().backward()
            t1, tb, t2 = theirs
            ((torch.tensor(x) @ t1 + tb).tanh() @ t2).pow(2).mean().backward()
            opt.step()
            ref.step()
        for a, b in zip(as_numpy(ours), theirs, strict=True):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


class SparseGrad:
    """A COO gradient with the interface SparseAdam reads (torch's sparse grad, in engine tensors)."""

    is_sparse = True

    def __init__(self, torch_grad):
        grad = torch_grad.coalesce()
        self.indices = engine.tensor(grad.indices().numpy())
        self.values = engine.tensor(grad.values().numpy())

    def coalesce(self):
        return self

    def _indices(self):
        return self.indices

    def _values(self):
        return self.values


@pytest.mark.parametrize("options", [{}, {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6}, {"maximize": True}])
def test_sparse_adam_updates_only_the_touched_rows_as_torch(torch, options):
    table = np.random.default_rng(3).standard_normal((6, 3))
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False, sparse=True)
    ours = nn.Parameter(engine.tensor(table))
    ref, opt = torch.optim.SparseAdam(theirs.parameters(), **options), engine.optim.SparseAdam([ours], **options)
    for k, rows in enumerate([[0, 2, 2], [1, 2], [5], [0, 5, 4]]):
        ref.zero_grad()
        (theirs(torch.tensor(rows)) ** 2 * (k + 1)).sum().backward()
        ours.grad = SparseGrad(theirs.weight.grad)
        opt.step()
        ref.step()
        np.testing.assert_allclose(ours.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    assert opt.state[ours]["step"] == ref.state[theirs.weight]["step"] == 4
    np.testing.assert_allclose(opt.state[ours]["exp_avg_sq"].numpy(), ref.state[theirs.weight]["exp_avg_sq"].numpy(),
                               rtol=1e-12)


@pytest.mark.parametrize("options", [{}, {"lr": 0.02, "nesterov": False, "adjust_lr_fn": "match_rms_adamw"},
                                     {"lr": 0.05, "weight_decay": 0.0, "momentum": 0.5, "ns_steps": 3}])
def test_muon_matches_torch_on_2d_weights(torch, options):
    ours, theirs = engine_params(), torch_params(torch)
    opt = engine.optim.Muon([ours[0], ours[2]], **options)
    ref = torch.optim.Muon([theirs[0], theirs[2]], **options)
    start = as_numpy(ours)
    got, want = run_engine(opt, ours, range(10)), run_torch(torch, ref, theirs, range(10))
    for i in (0, 2):  # the bias (index 1) is not Muon's
        np.testing.assert_allclose(got[i], want[i], rtol=1e-6, atol=1e-9)
        assert np.abs(got[i] - start[i]).max() > 1e-3
    mine, theirs_sd = opt.state_dict(), ref.state_dict()
    assert mine["param_groups"] == theirs_sd["param_groups"]
    assert list(mine["state"][0]) == list(theirs_sd["state"][0]) == ["momentum_buffer"]


def test_muon_refuses_what_torch_refuses(torch):
    for lib in (engine, torch):
        with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
            lib.optim.Muon([lib.zeros(3, requires_grad=True)])
        with pytest.raises(ValueError, match="Adjust learning rate function"):
            lib.optim.Muon([lib.zeros(2, 2, requires_grad=True)], adjust_lr_fn="other")

"""Helpers for the nn tests: run an engine module and its PyTorch twin on the same weights and inputs."""

from __future__ import annotations

import numpy as np
import pytest


def to_numpy(t) -> np.ndarray:
    """An engine or torch tensor as a NumPy array."""
    if hasattr(t, "detach"):
        t = t.detach()
    if type(t).__module__.startswith("torch"):
        return t.cpu().numpy()
    return np.asarray(t)


def copy_weights(module, torch_module, torch) -> None:
    """Load the engine module's state into the torch module (names must match exactly)."""
    state = {k: torch.from_numpy(np.array(to_numpy(v))) for k, v in module.state_dict().items()}
    torch_module.load_state_dict(state, strict=True)


def flatten_outputs(out) -> list:
    if isinstance(out, tuple | list):
        items = []
        for o in out:
            items += flatten_outputs(o)
        return items
    return [] if out is None else [out]


class Twin:
    """Compare forward outputs and input/parameter gradients of an engine module and a torch module."""

    def __init__(self, torch):
        self.torch = torch

    def __call__(self, module, torch_module, inputs, *, rtol=1e-6, atol=1e-8, grad=True, kwargs=None,
                 seed_grads=0, perturb=True):
        import engine

        torch = self.torch
        kwargs = kwargs or {}
        if perturb:  # move parameters off their (often trivial) initial values: ones, zeros
            rng = np.random.default_rng(seed_grads + 1)
            with engine.no_grad():
                for p in module.parameters():
                    p._data[...] += (0.3 * rng.standard_normal(p.shape)).astype(p._data.dtype)
        copy_weights(module, torch_module, torch)
        torch_module.train(module.training)
        e_in, t_in = [], []
        for x in inputs:
            x = np.asarray(x)
            differentiable = grad and x.dtype.kind == "f"
            e_in.append(engine.tensor(x, requires_grad=differentiable))
            t_in.append(torch.tensor(x, requires_grad=differentiable))
        e_out = flatten_outputs(module(*e_in, **kwargs))
        t_out = flatten_outputs(torch_module(*t_in, **_torch_kwargs(kwargs, torch)))
        assert len(e_out) == len(t_out)
        for e, t in zip(e_out, t_out, strict=True):
            assert tuple(e.shape) == tuple(t.shape)
            np.testing.assert_allclose(to_numpy(e), to_numpy(t), rtol=rtol, atol=atol)
        t_state = torch_module.state_dict()
        for name, value in module.state_dict().items():  # running statistics, num_batches_tracked
            np.testing.assert_allclose(to_numpy(value), to_numpy(t_state[name]), rtol=rtol, atol=atol,
                                       err_msg=name)
        if not grad:
            return
        rng = np.random.default_rng(seed_grads)
        e_total, t_total = None, None
        for e, t in zip(e_out, t_out, strict=True):
            if not t.requires_grad:
                continue
            w = rng.standard_normal(tuple(t.shape))
            e_term = (e * engine.tensor(w, dtype=e.dtype)).sum()
            t_term = (t * torch.tensor(w, dtype=t.dtype)).sum()
            e_total = e_term if e_total is None else e_total + e_term
            t_total = t_term if t_total is None else t_total + t_term
        e_total.backward()
        t_total.backward()
        for e, t in zip(e_in, t_in, strict=True):
            if t.requires_grad:
                np.testing.assert_allclose(to_numpy(e.grad), to_numpy(t.grad), rtol=rtol, atol=atol)
        t_params = dict(torch_module.named_parameters())
        for name, p in module.named_parameters():
            t_grad = t_params[name].grad
            if t_grad is None:
                assert p.grad is None or not np.any(to_numpy(p.grad)), name
                continue
            assert p.grad is not None, f"no gradient for {name}"
            np.testing.assert_allclose(to_numpy(p.grad), to_numpy(t_grad), rtol=rtol, atol=atol, err_msg=name)


def _torch_kwargs(kwargs: dict, torch) -> dict:
    out = {}
    for k, v in kwargs.items():
        if hasattr(v, "_data"):
            out[k] = torch.from_numpy(np.array(to_numpy(v)))
        elif isinstance(v, tuple) and v and hasattr(v[0], "_data"):
            out[k] = tuple(torch.from_numpy(np.array(to_numpy(x))) for x in v)
        else:
            out[k] = v
    return out


@pytest.fixture
def twin(torch):
    """``twin(engine_module, torch_module, inputs)`` asserts equal outputs and gradients."""
    return Twin(torch)


def run_both(torch, fn, floats, ints=(), *, rtol=1e-7, atol=1e-9, seed=1):
    """``fn(lib, *tensors)`` on engine and on torch (float64 inputs differentiated): equal outputs and grads."""
    import engine

    results = []
    for lib in (engine, torch):
        f_in = [lib.tensor(np.asarray(x, np.float64), requires_grad=True) for x in floats]
        i_in = [lib.tensor(np.asarray(x)) for x in ints]
        out = fn(lib, *f_in, *i_in)
        outs = list(out) if isinstance(out, tuple) else [out]
        results.append((f_in, outs))
    (e_in, e_out), (t_in, t_out) = results
    assert len(e_out) == len(t_out)
    for e, t in zip(e_out, t_out, strict=True):
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_allclose(to_numpy(e), to_numpy(t), rtol=rtol, atol=atol)
    e0, t0 = e_out[0], t_out[0]
    if not t0.requires_grad:
        return
    g = np.random.default_rng(seed).standard_normal(tuple(t0.shape))
    e0.backward(engine.tensor(g))
    t0.backward(torch.tensor(g))
    for e, t in zip(e_in, t_in, strict=True):
        expected = np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy()
        got = np.zeros(tuple(t.shape)) if e.grad is None else to_numpy(e.grad)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


@pytest.fixture
def both(torch):
    """``both(fn, floats, ints=())`` runs ``fn(lib, *tensors)`` on engine and torch and compares values and grads."""
    return lambda fn, floats, ints=(), **kw: run_both(torch, fn, floats, ints, **kw)

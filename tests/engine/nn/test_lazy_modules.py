"""Lazy modules against torch: shapes inferred at the first forward, class swap, state_dict, optimizer order."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import engine
from engine import nn
from engine.nn.parameter import UninitializedBuffer, is_lazy
from tests.engine.nn.conftest import to_numpy

CASES = [
    ("LazyLinear", (5,), {}, (3, 7)),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 3, 8)),
    ("LazyConv2d", (4, 3), {"stride": 2, "groups": 2}, (2, 6, 9, 9)),
    ("LazyConv3d", (2, 2), {}, (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2, "output_padding": 1}, (2, 3, 5)),
    ("LazyConvTranspose2d", (4, 3), {"groups": 2}, (2, 4, 5, 5)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 3, 3, 3)),
    ("LazyBatchNorm1d", (), {}, (6, 4)),
    ("LazyBatchNorm2d", (), {"momentum": None}, (3, 4, 5, 5)),
    ("LazyBatchNorm3d", (), {}, (2, 3, 2, 3, 3)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 6)),
    ("LazyInstanceNorm2d", (), {}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {"affine": False}, (2, 3, 3, 3, 3)),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), CASES, ids=[c[0] for c in CASES])
def test_lazy_module_matches_torch(name, args, kwargs, shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert ours.has_uninitialized_params() and theirs.has_uninitialized_params()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    target = ours.cls_to_become
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ours(engine.tensor(x))
    theirs(torch.tensor(x))  # torch's dry run, then the same weights in both
    assert type(ours) is target and type(ours).__name__ == type(theirs).__name__
    assert not hasattr(ours, "_initialize_hook") and not hasattr(ours, "_load_hook")
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict())
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    theirs.load_state_dict({k: torch.tensor(to_numpy(v)) for k, v in state.items()})
    xt = torch.tensor(x, requires_grad=True)
    xe = engine.tensor(x, requires_grad=True)
    out, expected = ours(xe), theirs(xt)
    np.testing.assert_allclose(to_numpy(out), expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(1).standard_normal(tuple(expected.shape)).astype(np.float32)
    out.backward(engine.tensor(g))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=n)


def test_the_dry_run_infers_every_layer_and_optimizers_follow_it():
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(2))
    assert [is_lazy(p) for p in model.parameters()] == [True] * 6
    model(engine.randn(2, 3, 6, 6))
    assert [type(m).__name__ for m in model] == ["Conv2d", "BatchNorm2d", "Flatten", "Linear"]
    assert (model[0].in_channels, model[1].num_features, model[3].in_features) == (3, 4, 64)
    opt = engine.optim.SGD(model.parameters(), lr=0.1)  # created after the dry run, as torch documents
    before = model[3].weight.detach().clone()
    model(engine.randn(2, 3, 6, 6)).sum().backward()
    opt.step()
    assert not engine.equal(before, model[3].weight.detach())


def test_uninitialized_state_dict_loads_into_a_lazy_module_and_materializes_it():
    trained = nn.LazyLinear(3)
    trained(engine.randn(2, 5))
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(trained.state_dict())
    assert not fresh.has_uninitialized_params()
    assert engine.equal(fresh.weight, trained.weight) and tuple(fresh.weight.shape) == (3, 5)
    fresh(engine.randn(4, 5))  # the hook still runs once and swaps the class
    assert type(fresh) is nn.Linear and fresh.in_features == 5


def test_loading_an_uninitialized_state_into_an_initialized_module_is_an_error():
    lazy_state = nn.LazyLinear(3).state_dict()
    target = nn.Linear(5, 3)
    before = target.weight.detach().clone()
    with pytest.raises(RuntimeError, match="uninitialized"):
        target.load_state_dict(lazy_state)
    assert engine.equal(before, target.weight)


def test_uninitialized_parameter_refuses_shape_and_materializes_like_torch():
    p = nn.UninitializedParameter(dtype=engine.float64)
    assert repr(p) == "<UninitializedParameter>" and p.requires_grad
    with pytest.raises(RuntimeError, match="Can't access the shape"):
        _ = p.shape
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and tuple(p.shape) == (2, 3) and p.dtype == engine.float64
    b = UninitializedBuffer()
    assert not b.requires_grad and copy.deepcopy(b) is not b
    b.materialize((4,))
    assert type(b) is engine.Tensor and tuple(b.shape) == (4,)


def test_lazy_errors_match_torch():
    with pytest.raises(RuntimeError, match="Expected 3D \\(unbatched\\) or 4D \\(batched\\) input"):
        nn.LazyConv2d(4, 3)(engine.randn(3, 3))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(engine.randn(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match="DataParallel"):
        nn.DataParallel(nn.LazyLinear(2))

"""Double backward through conv2d (create_graph=True), against PyTorch: stride, padding, dilation, groups."""

from __future__ import annotations

import numpy as np
import pytest

import engine


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"),
                         [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, (1, 0), 1, 2), (1, "same", 1, 1)])
def test_a_gradient_penalty_through_conv2d_matches_torch(torch, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 4, 7, 6)), rng.normal(size=(6, 4 // groups, 3, 3)), rng.normal(size=6)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ours = [engine.tensor(a, requires_grad=True) for a in (x, w, b)]
    for lib, (tx, tw, tb) in ((torch, theirs), (engine, ours)):
        y = lib.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
        (gx,) = lib.autograd.grad(y.pow(2).sum(), tx, create_graph=True)
        (gx.flatten(1).norm(2, dim=1) - 1).pow(2).sum().backward()
    for t, e in zip(theirs, ours, strict=True):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_a_hessian_vector_product_through_conv2d_wrt_its_weight_matches_torch(torch):
    rng = np.random.default_rng(1)
    x, w, v = rng.normal(size=(1, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=(3, 2, 3, 3))
    results = []
    for lib in (torch, engine):
        tw = lib.tensor(w, requires_grad=True)
        y = lib.nn.functional.conv2d(lib.tensor(x), tw).tanh().sum()
        (gw,) = lib.autograd.grad(y, tw, create_graph=True)
        (hv,) = lib.autograd.grad((gw * lib.tensor(v)).sum(), tw)
        results.append(hv.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("pool", "kwargs"), [
    ("max_pool2d", {"kernel_size": 2}), ("max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("max_pool2d", {"kernel_size": 2, "stride": 1, "dilation": 2, "ceil_mode": True}),
    ("avg_pool2d", {"kernel_size": 2}), ("avg_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False})])
def test_a_gradient_penalty_through_conv_and_pooling_matches_torch(torch, pool, kwargs):
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(2, 2, 7, 7)), rng.normal(size=(3, 2, 3, 3))
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    ours = [engine.tensor(a, requires_grad=True) for a in (x, w)]
    for lib, (tx, tw) in ((torch, theirs), (engine, ours)):
        y = getattr(lib.nn.functional, pool)(lib.nn.functional.conv2d(tx, tw, padding=1), **kwargs)
        (gx,) = lib.autograd.grad(y.pow(2).sum(), tx, create_graph=True)
        (gx.flatten(1).norm(2, dim=1) - 1).pow(2).sum().backward()
    for t, e in zip(theirs, ours, strict=True):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("stride", "padding", "output_padding", "dilation", "groups"),
                         [(1, 0, 0, 1, 1), (2, 1, 1, 1, 1), (2, 0, 0, 2, 2), (3, 1, 2, 1, 1)])
def test_double_backward_through_conv_transpose2d_matches_torch(torch, stride, padding, output_padding, dilation,
                                                                 groups):
    rng = np.random.default_rng(3)
    x, w, b = rng.normal(size=(2, 4, 4, 5)), rng.normal(size=(4, 6 // groups, 3, 3)), rng.normal(size=6)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ours = [engine.tensor(a, requires_grad=True) for a in (x, w, b)]
    for lib, (tx, tw, tb) in ((torch, theirs), (engine, ours)):
        y = lib.nn.functional.conv_transpose2d(tx, tw, tb, stride, padding, output_padding, groups, dilation)
        (gx, gw) = lib.autograd.grad(y.pow(2).sum(), (tx, tw), create_graph=True)
        (gx.pow(2).sum() + gw.pow(2).sum()).backward()
    for t, e in zip(theirs, ours, strict=True):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)

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


# After a piecewise-linear op PyTorch's penalty gradient reaches the conv's bias (and input) as zeros: the op's
# backward kernel takes its forward input. Where no such kernel sits in between, the bias gets None.
AFTER_CONV = {
    "none": lambda F, y: y,
    "relu": lambda F, y: F.relu(y),
    "leaky_relu": lambda F, y: F.leaky_relu(y, 0.2),
    "hardtanh": lambda F, y: F.hardtanh(y, -0.5, 0.5),
    "relu6": lambda F, y: F.relu6(y),
    "max_pool2d": lambda F, y: F.max_pool2d(y, 2),
    "avg_pool2d": lambda F, y: F.avg_pool2d(y, 2),
    "adaptive_avg_pool2d_to_1": lambda F, y: F.adaptive_avg_pool2d(y, 1),
    "adaptive_avg_pool2d_to_3": lambda F, y: F.adaptive_avg_pool2d(y, 3),
}


@pytest.mark.parametrize("after", sorted(AFTER_CONV))
def test_a_gradient_penalty_reaches_the_conv_bias_as_torch_does(torch, after):
    rng = np.random.default_rng(4)
    x, w, b, v = rng.normal(size=(2, 2, 6, 6)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), rng.normal(size=2)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ours = [engine.tensor(a, requires_grad=True) for a in (x, w, b)]
    for lib, (tx, tw, tb) in ((torch, theirs), (engine, ours)):
        y = AFTER_CONV[after](lib.nn.functional, lib.nn.functional.conv2d(tx, tw, tb, padding=1))
        critic = (y.flatten(1).sum(1) * lib.tensor(v)).sum()
        (gx,) = lib.autograd.grad(critic, tx, create_graph=True)
        (gx.flatten(1).norm(2, dim=1) - 1).pow(2).sum().backward()
    for name, t, e in zip("xwb", theirs, ours, strict=True):
        assert (e.grad is None) == (t.grad is None), name
        if t.grad is not None:
            np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_a_wgan_gp_critic_gives_every_conv_parameter_torchs_gradient(torch):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 1, 8, 8))
    def make(lib):
        return lib.nn.Sequential(lib.nn.Conv2d(1, 4, 3, stride=2, padding=1), lib.nn.LeakyReLU(0.2),
                                 lib.nn.Conv2d(4, 4, 3, padding=1), lib.nn.ReLU(), lib.nn.Flatten(),
                                 lib.nn.Linear(64, 1)).double()

    theirs_model = make(torch)
    ours_model = make(engine)  # with torch's weights
    ours_model.load_state_dict({k: engine.tensor(t.detach().numpy()) for k, t in theirs_model.state_dict().items()})
    grads = []
    for lib, critic in ((torch, theirs_model), (engine, ours_model)):
        mixed = lib.tensor(x, requires_grad=True)
        (g,) = lib.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        (g.flatten(1).norm(2, dim=1) - 1).pow(2).mean().backward()
        grads.append({k: None if p.grad is None else p.grad.numpy() for k, p in critic.named_parameters()})
    theirs, ours = grads
    assert theirs["0.bias"] is not None and not theirs["0.bias"].any()  # the zeros this test is about
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        assert (ours[key] is None) == (value is None), key
        if value is not None:
            np.testing.assert_allclose(ours[key], value, rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.gpu
def test_a_gradient_penalty_on_the_cuda_path_matches_the_cpu(cuda_backend):
    rng = np.random.default_rng(6)
    x, w, b = rng.normal(size=(2, 2, 6, 6)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    results = []
    for device in ("cpu", "cuda"):
        tx, tw, tb = (engine.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
        F = engine.nn.functional
        y = F.max_pool2d(F.leaky_relu(F.conv2d(tx, tw, tb, padding=1), 0.2), 2)
        (gx,) = engine.autograd.grad(y.pow(2).sum(), tx, create_graph=True)
        (gx.flatten(1).norm(2, dim=1) - 1).pow(2).sum().backward()
        assert tb.grad.device.type == device
        results.append([t.grad.cpu().numpy() for t in (tx, tw, tb)])
    for ours, cpu in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(ours, cpu, rtol=1e-10, atol=1e-12)

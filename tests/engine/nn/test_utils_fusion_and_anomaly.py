"""nn.utils fusion / clip_grads_with_norm_ / stateless, nn.init aliases and autograd anomaly mode vs torch."""

from __future__ import annotations

import numpy as np
import pytest

import engine


def _copy_into(torch_module, engine_module):
    for name, value in torch_module.state_dict().items():
        getattr(engine_module, name.split(".")[-1]).data = engine.tensor(value.detach().numpy().copy())


@pytest.mark.parametrize("transpose", [False, True])
def test_fuse_conv_bn_eval_matches_torch_and_the_unfused_pair(torch, transpose):
    tconv = (torch.nn.ConvTranspose2d if transpose else torch.nn.Conv2d)(3, 4, 3).double()
    tbn = torch.nn.BatchNorm2d(4).double()
    with torch.no_grad():
        tbn.running_mean.uniform_(-1, 1)
        tbn.running_var.uniform_(0.5, 2)
        tbn.weight.uniform_(0.5, 1.5)
        tbn.bias.uniform_(-1, 1)
    tconv.eval(), tbn.eval()
    econv = (engine.nn.ConvTranspose2d if transpose else engine.nn.Conv2d)(3, 4, 3, dtype=engine.float64)
    ebn = engine.nn.BatchNorm2d(4, dtype=engine.float64)
    _copy_into(tconv, econv)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(ebn, name).data = engine.tensor(getattr(tbn, name).detach().numpy().copy())
    econv.eval(), ebn.eval()
    fused = engine.nn.utils.fuse_conv_bn_eval(econv, ebn, transpose=transpose)
    tfused = torch.nn.utils.fuse_conv_bn_eval(tconv, tbn, transpose=transpose)
    np.testing.assert_allclose(fused.weight.detach().numpy(), tfused.weight.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fused.bias.detach().numpy(), tfused.bias.detach().numpy(), rtol=1e-12)
    x = engine.randn(2, 3, 6, 6, dtype=engine.float64)
    np.testing.assert_allclose(fused(x).detach().numpy(), ebn(econv(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    assert fused is not econv and isinstance(fused.weight, engine.nn.Parameter)
    econv.train()
    with pytest.raises(AssertionError, match="eval"):
        engine.nn.utils.fuse_conv_bn_eval(econv, ebn)


def test_fuse_linear_bn_eval_equals_the_unfused_pair(torch):
    lin = engine.nn.Linear(5, 4, dtype=engine.float64)
    bn = engine.nn.BatchNorm1d(4, dtype=engine.float64)
    bn.running_mean.data = engine.tensor([0.1, -0.2, 0.3, 0.0], dtype=engine.float64)
    bn.running_var.data = engine.tensor([1.5, 0.7, 2.0, 1.0], dtype=engine.float64)
    lin.eval(), bn.eval()
    fused = engine.nn.utils.fuse_linear_bn_eval(lin, bn)
    x = engine.randn(3, 5, dtype=engine.float64)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(lin(x)).detach().numpy(), rtol=1e-12)
    tw, tb = torch.nn.utils.fuse_linear_bn_weights(
        torch.tensor(lin.weight.detach().numpy()), torch.tensor(lin.bias.detach().numpy()),
        torch.tensor(bn.running_mean.numpy()), torch.tensor(bn.running_var.numpy()), bn.eps,
        torch.tensor(bn.weight.detach().numpy()), torch.tensor(bn.bias.detach().numpy()))
    np.testing.assert_allclose(fused.weight.detach().numpy(), tw.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(fused.bias.detach().numpy(), tb.detach().numpy(), rtol=1e-12)


def test_clip_grads_with_norm_scales_like_torch(torch):
    grads = [np.array([3.0, 4.0]), np.array([[1.0, -2.0]])]
    eps = [engine.zeros(g.shape, dtype=engine.float64, requires_grad=True) for g in grads]
    tps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for e, t, g in zip(eps, tps, grads, strict=True):
        e.grad, t.grad = engine.tensor(g), torch.tensor(g)
    total = engine.nn.utils.get_total_norm([p.grad for p in eps])
    engine.nn.utils.clip_grads_with_norm_(eps, 1.0, total)
    torch.nn.utils.clip_grads_with_norm_(tps, 1.0, torch.nn.utils.get_total_norm([p.grad for p in tps]))
    for e, t in zip(eps, tps, strict=True):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_stateless_functional_call_warns_and_swaps_parameters():
    lin = engine.nn.Linear(2, 1, bias=False)
    with pytest.warns(FutureWarning, match="torch.func.functional_call"):
        out = engine.nn.utils.stateless.functional_call(lin, {"weight": engine.ones(1, 2)}, (engine.ones(1, 2),))
    assert float(out) == 2.0


def test_init_aliases_fill_like_the_underscore_forms():
    w = engine.empty(3, 3)
    np.testing.assert_array_equal(engine.nn.init.eye(w).numpy(), np.eye(3))
    k = engine.empty(2, 2, 3)
    assert float(engine.nn.init.dirac(k).sum()) == 2.0


def test_detect_anomaly_names_the_node_that_made_nan_like_torch(torch):
    x = engine.tensor([0.0, 1.0], requires_grad=True)
    tx = torch.tensor([0.0, 1.0], requires_grad=True)
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        mode = engine.autograd.detect_anomaly()
    with mode, pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values in its 0th output"):
        (x.sqrt() * 0).sum().backward()
    with pytest.warns(UserWarning), torch.autograd.detect_anomaly(), \
            pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values in its 0th output"):
        (tx.sqrt() * 0).sum().backward()
    (x.sqrt() * 0).sum().backward()  # off again: NaN gradients pass silently
    assert np.isnan(x.grad.numpy()[0])
    with engine.autograd.set_detect_anomaly(True, check_nan=False):
        (x.sqrt() * 0).sum().backward()


def test_variable_is_the_tensor_type(torch):
    t = engine.ones(2)
    v = engine.autograd.Variable(t, requires_grad=True)
    assert v.requires_grad and not t.requires_grad and isinstance(t, engine.autograd.Variable)
    assert isinstance(torch.ones(2), torch.autograd.Variable)
    with pytest.raises(TypeError):
        engine.autograd.Variable([1.0])

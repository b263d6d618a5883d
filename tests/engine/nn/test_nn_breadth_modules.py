"""DataParallel, SyncBatchNorm (one process), CrossMapLRN2d, AdaptiveLogSoftmaxWithLoss and the small nn
namespaces (attention, common_types, factory_kwargs, grad) against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import engine
from engine import nn
from tests.engine.nn.conftest import copy_weights, to_numpy

RNG = np.random.default_rng(0)


def _pair(shape, dtype=np.float64):
    x = RNG.standard_normal(shape).astype(dtype)
    return engine.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def test_data_parallel_is_a_pass_through_with_torch_state_dict_keys():
    inner = nn.Linear(4, 3)
    dp = nn.DataParallel(inner)
    reference = torch.nn.DataParallel(torch.nn.Linear(4, 3))
    assert dp.module is inner and list(dp.state_dict()) == list(reference.state_dict())
    x = engine.randn(2, 4)
    assert engine.equal(dp(x), inner(x))
    with pytest.warns(UserWarning, match="one device"):
        nn.DataParallel(nn.Linear(1, 1), device_ids=[0, 1])
    with pytest.raises(TypeError, match=r"nn\.Module"):
        nn.DataParallel(lambda t: t)


def test_sync_batchnorm_without_a_process_group_is_batchnorm():
    ours, theirs = nn.SyncBatchNorm(3).double(), torch.nn.SyncBatchNorm(3).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x, xt = _pair((4, 3, 5))
    reference = torch.nn.BatchNorm1d(3).double()
    out, expected = ours(x), reference(xt)
    np.testing.assert_allclose(to_numpy(out), expected.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.running_var.numpy(), reference.running_var.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        ours(engine.randn(3))


def test_convert_sync_batchnorm_shares_parameters_and_stats_like_torch():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Sequential(nn.BatchNorm2d(4, momentum=0.3)))
    model.eval()
    bn = model[1][0]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    sync = converted[1][0]
    assert type(sync) is nn.SyncBatchNorm and sync.momentum == 0.3 and not sync.training
    assert sync.weight is bn.weight and sync.running_mean is bn.running_mean
    reference = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Sequential(torch.nn.BatchNorm2d(4))))
    assert list(converted.state_dict()) == list(reference.state_dict())


@pytest.mark.parametrize(("size", "channels"), [(5, 7), (2, 4), (4, 3)])
def test_cross_map_lrn2d_matches_torch(size, channels):
    x, xt = _pair((2, channels, 3, 4))
    out = nn.CrossMapLRN2d(size, alpha=0.3, beta=0.6, k=1.5)(x)
    expected = torch.nn.CrossMapLRN2d(size, alpha=0.3, beta=0.6, k=1.5)(xt)
    np.testing.assert_allclose(to_numpy(out), expected.detach().numpy(), atol=1e-12)
    g = RNG.standard_normal(x.shape)
    out.backward(engine.tensor(g))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="Expected input to be 4D"):
        nn.CrossMapLRN2d(3)(engine.randn(2, 3, 4))


def _asm_pair(div_value=2.0, **kwargs):  # NOTE: torch warns on the 0-wide tails of 4.0
    ours = nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[4, 10, 15], div_value=div_value, **kwargs).double()
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[4, 10, 15], div_value=div_value, **kwargs).double()
    copy_weights(ours, theirs, torch)
    return ours, theirs


@pytest.mark.parametrize("head_bias", [False, True])
def test_adaptive_log_softmax_forward_and_grads_match_torch(head_bias):
    ours, theirs = _asm_pair(head_bias=head_bias)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x, xt = _pair((12, 8))
    target = np.array([0, 3, 4, 9, 10, 14, 15, 19, 1, 12, 5, 17])
    out = ours(x, engine.tensor(target))
    expected = theirs(xt, torch.tensor(target))
    assert out._fields == ("output", "loss")
    np.testing.assert_allclose(to_numpy(out.output), expected.output.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(float(out.loss), expected.loss.item(), atol=1e-12)
    out.loss.backward()
    expected.loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), atol=1e-12)
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-12, err_msg=name)
    one = ours(x[0], engine.tensor(target[0]))
    assert one.output.dim() == 0
    np.testing.assert_allclose(float(one.output), expected.output[0].item(), atol=1e-12)


def test_adaptive_log_softmax_log_prob_and_predict_match_torch():
    ours, theirs = _asm_pair()
    with engine.no_grad():
        ours.head.weight.copy_(engine.tensor(RNG.standard_normal((7, 8)) * 3))  # sharp: some rows pick a tail
    copy_weights(ours, theirs, torch)
    x, xt = _pair((30, 8))
    np.testing.assert_allclose(to_numpy(ours.log_prob(x)), theirs.log_prob(xt).detach().numpy(), atol=1e-12)
    # NOTE: torch's log_prob fails on an unbatched input (its head runs before the unsqueeze); ours gives row 0
    np.testing.assert_allclose(to_numpy(ours.log_prob(x[0])), theirs.log_prob(xt).detach().numpy()[0], atol=1e-12)
    predicted = theirs.predict(xt).numpy()
    assert (predicted >= 4).any() and (predicted < 4).any()
    assert ours.predict(x).tolist() == predicted.tolist()
    assert [int(ours.predict(x[i])) for i in range(len(predicted))] == predicted.tolist()  # torch fails unbatched


def test_adaptive_log_softmax_rejects_bad_arguments_like_torch():
    for cutoffs in ([], [5, 3], [0, 4], [4, 20], [4, 4]):
        with pytest.raises(ValueError, match="cutoffs should be"):
            nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=cutoffs)
    asm = nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[4])
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 19\]"):
        asm(engine.randn(2, 8), engine.tensor([1, 20]))
    with pytest.raises(RuntimeError, match="same size in the batch dimension"):
        asm(engine.randn(3, 8), engine.tensor([1, 2]))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_nn_grad_conv_input_and_weight_match_torch(dims):
    x, xt = _pair((2, 4) + (5,) * dims)
    w, wt = _pair((6, 2) + (3,) * dims)
    kwargs = {"stride": 2, "padding": 1, "dilation": 1, "groups": 2}
    conv = getattr(torch.nn.functional, f"conv{dims}d")
    g = RNG.standard_normal(tuple(conv(xt, wt, **kwargs).shape))
    gi = getattr(nn.grad, f"conv{dims}d_input")(tuple(x.shape), w, engine.tensor(g), **kwargs)
    gw = getattr(nn.grad, f"conv{dims}d_weight")(x, tuple(w.shape), engine.tensor(g), **kwargs)
    np.testing.assert_allclose(to_numpy(gi), getattr(torch.nn.grad, f"conv{dims}d_input")(
        xt.shape, wt, torch.tensor(g), **kwargs).detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(to_numpy(gw), getattr(torch.nn.grad, f"conv{dims}d_weight")(
        xt, wt.shape, torch.tensor(g), **kwargs).detach().numpy(), atol=1e-12)


def test_nn_attention_selectors_are_accepted_and_checked():
    from engine.nn.attention import SDPBackend, sdpa_kernel

    assert {b.name: b.value for b in SDPBackend} == {n: int(b) for n, b in torch.nn.attention.SDPBackend.__members__.items()}
    q = engine.randn(1, 2, 3, 4)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
        out = nn.functional.scaled_dot_product_attention(q, q, q)
    assert engine.equal(out, nn.functional.scaled_dot_product_attention(q, q, q))
    with pytest.raises(ValueError, match="SDPBackend"), sdpa_kernel("math"):
        pass


def test_factory_kwargs_and_common_types_match_torch():
    given = {"device": "cpu", "factory_kwargs": {"dtype": "f"}}
    assert nn.factory_kwargs(given) == torch.nn.factory_kwargs(given)
    assert nn.factory_kwargs(None) == {}
    with pytest.raises(TypeError, match="unexpected kwargs"):
        nn.factory_kwargs({"layout": 1})
    with pytest.raises(TypeError, match="specified twice"):
        nn.factory_kwargs({"dtype": 1, "factory_kwargs": {"dtype": 2}})
    public = {n for n in dir(torch.nn.common_types) if n.startswith("_s") or n.startswith("_r") or n in ("T",)}
    assert public <= set(dir(nn.common_types))

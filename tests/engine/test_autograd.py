"""Autograd semantics: accumulation, graph freeing, hooks, grad modes, higher order, custom
Functions, in-place detection, deep graphs and memory."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest
from torch_oracle import require_torch

import engine
from engine.autograd import Function

torch = require_torch()


def leaf(values, dtype=engine.float32):
    return engine.tensor(values, dtype=dtype, requires_grad=True)


def test_gradient_accumulates_into_leaf_across_backward_calls():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3, 6 + 3])


def test_broadcast_gradient_is_reduced_to_input_shape():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.arange(4.0))
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1)
    assert b.grad.shape == (4,)
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), 6.0))
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 3.0))


def test_gradient_keeps_the_dtype_of_a_promoted_input():
    x = leaf([1.0, 2.0])
    s = engine.tensor(3.0, dtype=engine.float64, requires_grad=True)
    y = x * s
    assert y.dtype == engine.float32
    y.sum().backward()
    assert s.grad.dtype == engine.float64
    assert s.grad.item() == pytest.approx(3.0)


def test_second_backward_without_retain_graph_raises_clear_error():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_backward_of_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()
    y.backward(engine.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        engine.tensor([1.0]).sum().backward()


def test_leaf_gradients_never_alias_each_other():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad.mul_(10)
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_hook_on_leaf_can_replace_gradient_and_be_removed():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
    (x * 2).sum().backward()
    assert seen == [[2.0, 2.0]]
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 20.0])
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_hook_on_intermediate_changes_upstream_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.register_hook(lambda g: g * 0)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0])


def test_retain_grad_keeps_gradient_of_intermediate():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    z = (y * y).sum()
    z.backward()
    np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])
    assert (x * 1).grad is None


def test_no_grad_context_and_decorator_do_not_record():
    x = leaf([1.0])
    with engine.no_grad():
        y = x * 2
        with engine.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @engine.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert engine.is_grad_enabled()


def test_set_grad_enabled_and_inference_mode():
    x = leaf([1.0])
    with engine.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert engine.is_grad_enabled()
    with engine.inference_mode():
        assert not (x * 2).requires_grad
    with engine.inference_mode(False):
        assert (x * 2).requires_grad

    @engine.inference_mode()
    def infer(t):
        return t + 1

    assert not infer(x).requires_grad


def test_detach_shares_memory_and_drops_history():
    x = leaf([1.0, 2.0])
    y = (x * 2).detach()
    assert y.grad_fn is None and not y.requires_grad
    z = x.detach()
    z.numpy()[0] = 5.0
    assert x.tolist()[0] == 5.0


def test_only_floating_tensors_can_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        engine.tensor([1, 2]).requires_grad_()


def test_second_derivatives_match_torch():
    values = [0.3, -1.2, 2.0]

    def f(lib, x):
        return (x.sin() * x.exp() + x**3).sum()

    for lib, make in ((engine, engine.tensor), (torch, torch.tensor)):
        x = make(values, dtype=lib.float64, requires_grad=True)
        (dx,) = lib.autograd.grad(f(lib, x), x, create_graph=True)
        dx.sum().backward()
        if lib is engine:
            engine_first, engine_second = dx.detach().numpy(), x.grad.numpy()
        else:
            torch_first, torch_second = dx.detach().numpy(), x.grad.numpy()
    np.testing.assert_allclose(engine_first, torch_first, rtol=1e-12)
    np.testing.assert_allclose(engine_second, torch_second, rtol=1e-12)


def test_hessian_vector_product_through_matmul_and_softmax():
    rng = np.random.default_rng(0)
    w_np, x_np, v_np = rng.standard_normal((3, 4)), rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    results = []
    for lib in (engine, torch):
        w = lib.tensor(w_np, requires_grad=True)
        loss = lib.log_softmax(lib.tensor(x_np) @ w, dim=1).sum() + (w.tanh() ** 2).sum()
        (g,) = lib.autograd.grad(loss, w, create_graph=True)
        (hv,) = lib.autograd.grad((g * lib.tensor(v_np)).sum(), w)
        results.append(hv.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-10, atol=1e-12)


def test_autograd_grad_leaves_dot_grad_untouched_and_checks_unused_inputs():
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    (gx,) = engine.autograd.grad((x * x).sum(), x, retain_graph=True)
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])
    assert x.grad is None
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="not have been used in the graph"):
        engine.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = engine.autograd.grad(y, [x, unused], allow_unused=True)
    assert gu is None


def test_autograd_grad_with_respect_to_an_intermediate():
    x = leaf([1.0, 2.0])
    y = x * 3
    z = (y * y).sum()
    (gy,) = engine.autograd.grad(z, y)
    np.testing.assert_allclose(gy.numpy(), [6.0, 12.0])


class CubeWithScale(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x**3 * scale

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2 * ctx.scale, None


def test_custom_function_forward_backward_and_needs_input_grad():
    x = leaf([1.0, 2.0], engine.float64)
    y = CubeWithScale.apply(x, 2.0)
    assert y.grad_fn.name() == "CubeWithScaleBackward0"
    assert y.grad_fn.needs_input_grad == (True, False)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])
    assert engine.autograd.gradcheck(lambda t: CubeWithScale.apply(t, 2.0), (leaf([0.5, -1.5], engine.float64),))


def test_custom_function_supports_second_derivatives():
    x = leaf([1.0, 2.0], engine.float64)
    (g,) = engine.autograd.grad(CubeWithScale.apply(x, 1.0).sum(), x, create_graph=True)
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])


class SplitHalves(Function):
    @staticmethod
    def forward(ctx, x):
        n = x.shape[0] // 2
        return x[:n] * 1, x[n:] * 2

    @staticmethod
    def backward(ctx, grad_first, grad_second):
        return engine.cat([grad_first, grad_second * 2])


def test_custom_function_with_two_outputs_materializes_missing_gradients():
    x = leaf([1.0, 2.0, 3.0, 4.0])
    _, second = SplitHalves.apply(x)
    second.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 2.0, 2.0])


class WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * x  # wrong: should be 2 * x


def test_gradcheck_detects_a_wrong_backward():
    with pytest.raises(engine.autograd.GradcheckError, match="Jacobian mismatch"):
        engine.autograd.gradcheck(WrongSquare.apply, (leaf([0.5, 1.5], engine.float64),))
    assert not engine.autograd.gradcheck(WrongSquare.apply, (leaf([0.5], engine.float64),), raise_exception=False)


def test_inplace_change_to_saved_tensor_raises_at_backward():
    x = leaf([1.0, 2.0])
    a = x * 2
    b = a * a  # saves a
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_inplace_change_to_saved_output_raises_at_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()  # saves its output
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_optimizer_style_update_of_saved_parameter_is_detected():
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()
    with engine.no_grad():
        w.sub_(0.1)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        loss.backward()


def test_inplace_on_leaf_that_requires_grad_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with engine.no_grad():
        x.add_(1)
    assert x.tolist() == [2.0]


def test_inplace_ops_are_recorded_like_torch():
    values = [0.5, -1.0, 2.0]
    grads = []
    for lib in (engine, torch):
        x = lib.tensor(values, requires_grad=True)
        y = x * 1
        y.mul_(x)
        y += 3
        y.sigmoid_()
        y.sum().backward()
        grads.append((y.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-6)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-6)


def test_setitem_records_gradient_for_assigned_values():
    results = []
    for lib in (engine, torch):
        v = lib.tensor([1.0, 2.0], requires_grad=True)
        buf = lib.zeros(4)
        buf[1:3] = v * 3
        buf[0] = v[0]
        (buf * lib.arange(4.0)).sum().backward()
        results.append(v.grad.numpy())
    np.testing.assert_allclose(results[0], results[1])


def test_100000_deep_chain_backpropagates():
    x = leaf([1.0])
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]
    del y  # releasing a 100,000-node graph must not overflow the stack either


def test_graph_is_freed_by_reference_counting_after_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()
    node = weakref.ref(y.grad_fn)
    loss = (y * 2).sum()
    loss.backward()
    del y, loss
    assert node() is None, "the graph should be released without waiting for the cycle collector"


def _training_step(w, b, data, target):
    pred = (data @ w + b).tanh()
    loss = ((pred - target) ** 2).mean()
    loss.backward()
    with engine.no_grad():
        w.sub_(w.grad * 0.01)
        b.sub_(b.grad * 0.01)
        w.grad = None
        b.grad = None
    return loss.item()


def test_memory_does_not_grow_over_1000_training_steps():
    w = engine.randn(8, 4, requires_grad=True)
    b = engine.zeros(4, requires_grad=True)
    data, target = engine.randn(16, 8), engine.randn(16, 4)
    tracemalloc.start()
    usage = []
    for _ in range(3):  # NOTE: the first 1,000 steps fill interpreter/NumPy caches; later ones must not grow
        for _ in range(1000):
            _training_step(w, b, data, target)
        gc.collect()  # also empties CPython's free lists, which tracemalloc counts as live
        usage.append((tracemalloc.get_traced_memory()[0], len(gc.get_objects())))
    tracemalloc.stop()
    (_, _), (bytes_1, objects_1), (bytes_2, objects_2) = usage
    # NOTE: a graph kept alive per step costs well over 500 bytes a step (arrays and nodes), so
    # 1000 steps would grow by >500 KB; a few KB come and go with NumPy's internal caches.
    assert bytes_2 - bytes_1 < 64 * 1024, f"memory grew by {bytes_2 - bytes_1} bytes over 1000 steps"
    assert objects_2 - objects_1 < 20


def test_multiple_roots_backward_together():
    x = leaf([1.0, 2.0])
    a, b = (x * 2).sum(), (x * x).sum()
    engine.autograd.backward([a, b])
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0])


def test_next_functions_expose_the_graph():
    x = leaf([1.0])
    y = x.exp() * 2
    names = [fn.name() for fn, _ in y.grad_fn.next_functions if fn is not None]
    assert names == ["ExpBackward0"]
    assert y.grad_fn.next_functions[0][0].next_functions[0][0].name() == "AccumulateGrad"

"""engine.utils.checkpoint against torch.utils.checkpoint: gradients, RNG replay, memory kept, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.autograd.function import _SavedOutput
from engine.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential


def _mlp(layers: int = 8, width: int = 16, dropout: float = 0.0) -> nn.Sequential:
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(width, width), nn.Tanh()] + ([nn.Dropout(dropout)] if dropout else [])
    return nn.Sequential(*blocks)


def _torch_copy(torch, model: nn.Sequential):
    twin = torch.nn.Sequential(*[torch.nn.Linear(m.in_features, m.out_features) if isinstance(m, nn.Linear)
                                 else torch.nn.Tanh() for m in model])
    with torch.no_grad():
        for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            theirs.copy_(torch.from_numpy(mine.detach().numpy().copy()))
    return twin


def _grads(model) -> list[np.ndarray]:
    return [p.grad.numpy().copy() for p in model.parameters()]


def _run(model, x, mode):
    """Loss of model(x) with every 2 layers checkpointed (mode: None = plain, else use_reentrant)."""
    model.zero_grad()
    h = x
    layers = list(model)
    for i in range(0, len(layers), 2):
        block = nn.Sequential(*layers[i:i + 2])
        h = block(h) if mode is None else checkpoint(block, h, use_reentrant=mode)
    loss = (h * h).sum()
    loss.backward()
    return loss


@pytest.mark.parametrize("reentrant", [False, True])
def test_gradients_equal_plain_run_and_torch(torch, reentrant):
    model = _mlp()
    x = engine.randn(4, 16, requires_grad=True)
    _run(model, x, None)
    plain, plain_x = _grads(model), x.grad.numpy().copy()
    x.grad = None
    _run(model, x, reentrant)
    for a, b in zip(plain, _grads(model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(plain_x, x.grad.numpy(), rtol=1e-6, atol=1e-7)

    twin = _torch_copy(torch, model)
    tx = torch.from_numpy(x.detach().numpy().copy()).requires_grad_(True)
    h = tx
    for i in range(0, len(twin), 2):
        h = torch.utils.checkpoint.checkpoint(twin[i:i + 2], h, use_reentrant=reentrant)
    (h * h).sum().backward()
    for mine, theirs in zip(_grads(model), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_input_without_grad_still_gives_parameter_grads_non_reentrant():
    model = _mlp(layers=2)
    x = engine.randn(3, 16)
    _run(model, x, None)
    plain = _grads(model)
    _run(model, x, False)
    for a, b in zip(plain, _grads(model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_reentrant_warns_when_no_input_requires_grad_and_output_has_no_graph(torch):
    model = _mlp(layers=1)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        y = checkpoint(model, engine.randn(2, 16), use_reentrant=True)
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
        ty = torch.utils.checkpoint.checkpoint(_torch_copy(torch, model), torch.randn(2, 16), use_reentrant=True)
    assert y.requires_grad is ty.requires_grad is False


def test_missing_use_reentrant_warns_as_torch(torch):
    model = _mlp(layers=1)
    x = engine.randn(2, 16, requires_grad=True)
    with warnings.catch_warnings(record=True) as mine:
        warnings.simplefilter("always")
        checkpoint(model, x)
        checkpoint_sequential(model, 1, x)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        twin, tx = _torch_copy(torch, model), torch.randn(2, 16, requires_grad=True)
        torch.utils.checkpoint.checkpoint(twin, tx)
        torch.utils.checkpoint.checkpoint_sequential(twin, 1, tx)
    assert [str(w.message) for w in mine] == [str(w.message) for w in theirs]
    assert all(w.filename == __file__ for w in mine)


def test_kwargs_non_tensor_args_and_multiple_outputs():
    lin = nn.Linear(4, 4)

    def fn(x, scale, *, shift, tag):
        assert tag == "t"
        h = lin(x) * scale + shift
        return h, h.tanh(), tag

    x = engine.randn(3, 4, requires_grad=True)
    shift = engine.randn(4, requires_grad=True)
    a, b, tag = checkpoint(fn, x, 2.0, shift=shift, tag="t", use_reentrant=False)
    assert tag == "t"
    (a.sum() + (b * b).sum()).backward()
    got = [x.grad.numpy().copy(), shift.grad.numpy().copy(), lin.weight.grad.numpy().copy()]
    x.grad = shift.grad = lin.weight.grad = None
    a, b, _ = fn(x, 2.0, shift=shift, tag="t")
    (a.sum() + (b * b).sum()).backward()
    for g, t in zip(got, [x, shift, lin.weight], strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: shift"):
        checkpoint(fn, x, 2.0, shift=shift, use_reentrant=True)


def test_closure_tensor_with_history_and_autograd_grad():
    w = engine.randn(4, requires_grad=True)
    outside = w * 3  # read by the segment without being an argument
    x = engine.randn(2, 4, requires_grad=True)
    y = checkpoint(lambda t: (t * outside).sin(), x, use_reentrant=False)
    gx, gw = engine.autograd.grad(y.sum(), (x, w))
    ex, ew = engine.autograd.grad((x * (w * 3)).sin().sum(), (x, w))
    np.testing.assert_allclose(gx.numpy(), ex.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gw.numpy(), ew.numpy(), rtol=1e-6)
    assert w.grad is None


def test_nested_checkpoints():
    model = _mlp(layers=4)
    x = engine.randn(3, 16, requires_grad=True)
    _run(model, x, None)
    plain = _grads(model)
    model.zero_grad()
    inner = lambda h, i: checkpoint(model[i:i + 2], h, use_reentrant=False)  # noqa: E731
    outer = lambda h: inner(inner(h, 0), 2)  # noqa: E731
    y = checkpoint(lambda h: inner(outer(h), 4), x, use_reentrant=False)
    y = model[6:8](y)
    (y * y).sum().backward()
    for a, b in zip(plain, _grads(model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("reentrant", [False, True])
def test_dropout_replays_the_forward_rng(reentrant):
    model = _mlp(layers=4, dropout=0.5)
    x = engine.randn(8, 16, requires_grad=True)
    engine.manual_seed(7)
    plain_loss = _run(model, x, None)
    plain, after_plain = _grads(model), engine.rand(3).numpy()
    engine.manual_seed(7)
    loss = _run(model, x, reentrant)
    assert loss.item() == pytest.approx(plain_loss.item())
    for a, b in zip(plain, _grads(model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(engine.rand(3).numpy(), after_plain)  # backward left the RNG where it was


def test_without_preserved_rng_dropout_masks_differ():
    drop = nn.Dropout(0.5)
    x = engine.ones(64, requires_grad=True)
    y = checkpoint(drop, x, use_reentrant=False, preserve_rng_state=False)
    with pytest.raises(AssertionError):  # the recomputed mask is a fresh one
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def _graph_saved_bytes(root: engine.Tensor, exclude: set) -> int:
    """Bytes of the arrays the graph behind ``root`` keeps for backward (parameters excluded)."""
    seen, total, stack, nodes = set(), 0, [root.grad_fn], set()

    def arrays(value, depth=0):
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, engine.Tensor):
            yield value._data
        elif isinstance(value, _SavedOutput):
            yield value.data
        elif isinstance(value, list | tuple) and depth < 3:
            for v in value:
                yield from arrays(v, depth + 1)
        elif isinstance(value, dict) and depth < 3:
            for v in value.values():
                yield from arrays(v, depth + 1)

    while stack:
        node = stack.pop()
        if node is None or id(node) in nodes or isinstance(node, engine.Tensor):
            continue
        nodes.add(id(node))
        values = [getattr(node, k) for k in ("_saved", "_output") if getattr(node, k, None) is not None]
        # NOTE: "_rng" is a checkpoint's stashed RNG state: a few KB, whatever the model's size
        values += [v for k, v in vars(node).items() if k not in ("_next", "_external", "_saved", "_output", "_rng")]
        for value in values:
            for a in arrays(value):
                base = a if a.base is None else a.base
                if id(base) not in seen and id(base) not in exclude:
                    seen.add(id(base))
                    total += base.nbytes
        stack.extend(edge[0] for edge in node._next if edge is not None)
    return total


def test_checkpointed_graph_keeps_far_fewer_activation_bytes():
    model = _mlp(layers=16, width=64)
    x = engine.randn(256, 64, requires_grad=True)
    params = {id(p._data) for p in model.parameters()}
    activation = 256 * 64 * 4
    # plain: each Linear keeps its input (the Tanh before it keeps the same array) and the last Tanh its output
    assert _graph_saved_bytes(model(x), params) == 17 * activation
    # one checkpoint around everything: only x
    assert _graph_saved_bytes(checkpoint(model, x, use_reentrant=False), params) == 1 * activation
    # 4 segments: the inputs of the 3 checkpointed ones, then the last 4 layers as plain
    y = checkpoint_sequential(model, 4, x, use_reentrant=False)
    assert _graph_saved_bytes(y, params) == (3 + 5) * activation
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_checkpoint_sequential_matches_torch(torch):
    model = _mlp(layers=6)
    x = engine.randn(5, 16, requires_grad=True)
    checkpoint_sequential(model, 3, x, use_reentrant=False).pow(2).sum().backward()
    twin = _torch_copy(torch, model)
    tx = torch.from_numpy(x.detach().numpy().copy()).requires_grad_(True)
    torch.utils.checkpoint.checkpoint_sequential(twin, 3, tx, use_reentrant=False).pow(2).sum().backward()
    for mine, theirs in zip(_grads(model), twin.parameters(), strict=True):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: foo"):
        checkpoint_sequential(model, 2, x, use_reentrant=False, foo=1)


def test_recomputation_that_differs_is_a_checkpoint_error():
    calls = []

    def unstable(x):
        calls.append(1)
        return x[: len(calls)] * 2

    x = engine.randn(4, requires_grad=True)
    y = checkpoint(unstable, x, use_reentrant=False, debug=True)
    with pytest.raises(CheckpointError, match="different metadata"):
        y.sum().backward()


def test_bad_options_are_refused_as_torch(torch):
    x = engine.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="determinism_check should be one of"):
        checkpoint(engine.sin, x, use_reentrant=False, determinism_check="strict")
    with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
        checkpoint(engine.sin, x, use_reentrant=True, debug=True)
    with pytest.raises(ValueError, match="only supported when use_reentrant=False"):
        torch.utils.checkpoint.checkpoint(torch.sin, torch.ones(2), use_reentrant=True, debug=True)


def test_input_modified_in_place_after_forward_is_refused():
    x = engine.randn(3, requires_grad=True)
    h = x * 1
    y = checkpoint(engine.sin, h, use_reentrant=False)
    with engine.no_grad():
        h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_under_no_grad_it_just_runs():
    x = engine.randn(3, requires_grad=True)
    with engine.no_grad():
        y = checkpoint(engine.sin, x, use_reentrant=False)
    assert y.grad_fn is None and not y.requires_grad


def test_segment_returning_its_input_and_retained_graph():
    x = engine.randn(3, requires_grad=True)
    y = checkpoint(lambda t: t, x, use_reentrant=False)
    (y * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 2.0, np.float32))
    x.grad = None
    z = checkpoint(lambda t: (t * 3).sum(), x, use_reentrant=False)
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 6.0, np.float32))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        z.backward()


def test_double_backward_through_a_segment_is_refused_clearly():
    x = engine.randn(3, requires_grad=True)
    y = checkpoint(engine.sin, x, use_reentrant=False)
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        engine.autograd.grad(y.sum(), x, create_graph=True)


def test_conv_pool_norm_and_embedding_segments_match_plain_run():
    conv = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.LayerNorm(3))
    images = engine.randn(2, 2, 4, 4)
    conv(images).sum().backward()
    plain = _grads(conv)
    conv.zero_grad()
    checkpoint(conv, images, use_reentrant=False).sum().backward()
    for a, b in zip(plain, _grads(conv), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    emb = nn.Embedding(10, 4)
    idx = engine.tensor([1, 2, 2, 5])
    checkpoint(emb, idx, use_reentrant=False).pow(2).sum().backward()
    expected = emb.weight.grad.numpy().copy()
    emb.weight.grad = None
    emb(idx).pow(2).sum().backward()
    np.testing.assert_allclose(expected, emb.weight.grad.numpy(), rtol=1e-6)


def test_the_forward_graph_of_the_segment_is_freed():
    import gc
    import weakref

    seen = []

    def segment(t):
        h = (t * 2).tanh()
        seen.append(weakref.ref(h.grad_fn))
        return h.exp()

    x = engine.randn(64, requires_grad=True)
    y = checkpoint(segment, x, use_reentrant=False)
    gc.collect()
    assert seen[0]() is None  # the intermediate's node (and what it saved) is gone
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ((x * 2).tanh().exp() * (1 - (x * 2).tanh() ** 2) * 2).detach().numpy(),
                               rtol=1e-5)

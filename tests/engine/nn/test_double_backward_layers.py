"""Double backward (create_graph=True) through embedding, attention and normalization, against PyTorch.

Each case takes a gradient with a graph (of the loss with respect to an input or a weight), puts a penalty on
it and backpropagates again: every leaf's second-order gradient, and which leaves get none, must match torch.
Torch's CPU flash attention has no double backward, so torch runs attention on its math backend.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import engine


def _math_attention(lib):
    """torch on its math attention backend (the one with a double backward); the engine as it is."""
    if lib is engine:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def _leaves(lib, arrays):
    return [lib.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]


def _penalty_grads(lib, build, arrays, wrt):
    """Leaf gradients of ``sum((d build / d leaves[wrt]) ** 2)``."""
    leaves = _leaves(lib, arrays)
    with _math_attention(lib):
        out = build(lib, *leaves)
        grads = lib.autograd.grad(out, [leaves[i] for i in wrt], create_graph=True)
        sum(g.pow(2).sum() for g in grads).backward()
    return [None if t.grad is None else t.grad.numpy() for t in leaves]


def _assert_same_as_torch(torch, build, arrays, wrt, rtol=1e-10):
    theirs, ours = _penalty_grads(torch, build, arrays, wrt), _penalty_grads(engine, build, arrays, wrt)
    for i, (t, e) in enumerate(zip(theirs, ours, strict=True)):
        assert (e is None) == (t is None), f"leaf {i}"
        if t is not None:
            np.testing.assert_allclose(e, t, rtol=rtol, atol=1e-10, err_msg=f"leaf {i}")


def _twins(torch, make):
    """The same float64 module built by torch and by the engine, with torch's initial weights."""
    theirs, ours = make(torch).double(), make(engine).double()
    ours.load_state_dict({k: engine.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return {torch: theirs, engine: ours}


def _rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("padding_idx", [None, 1, -1])
def test_a_penalty_on_the_embedding_weights_gradient_matches_torch(torch, padding_idx):
    rng = _rng()
    idx, weight, head = rng.integers(0, 5, (3, 4)), rng.normal(size=(5, 3)), rng.normal(size=(3, 2))

    def build(lib, idx, weight, head):
        return (lib.nn.functional.embedding(idx, weight, padding_idx=padding_idx) @ head).tanh().pow(2).sum()

    _assert_same_as_torch(torch, build, [idx, weight, head], wrt=[1])


def test_a_penalty_through_nn_embedding_into_a_model_matches_torch(torch):
    rng = _rng()
    idx = rng.integers(0, 6, (2, 5))
    models = _twins(torch, lambda lib: lib.nn.Sequential(lib.nn.Embedding(6, 4, padding_idx=0), lib.nn.Linear(4, 1)))
    grads = []
    for lib in (torch, engine):
        emb, proj = models[lib]
        loss = proj(emb(lib.tensor(idx)).sin()).sum()
        (g,) = lib.autograd.grad(loss, emb.weight, create_graph=True)
        (g.norm() - 1).pow(2).backward()
        grads.append([None if p.grad is None else p.grad.numpy() for p in (emb.weight, proj.weight, proj.bias)])
    for t, e in zip(*grads, strict=True):
        assert (e is None) == (t is None)
        if t is not None:
            np.testing.assert_allclose(e, t, rtol=1e-10, atol=1e-12)
    assert not grads[1][0][0].any()  # the padding row gets nothing, to second order too


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"scale": 0.3}, {"mask": "bool"}, {"mask": "float"}])
def test_a_gradient_penalty_through_scaled_dot_product_attention_matches_torch(torch, kwargs):
    rng = _rng()
    q, k, v = rng.normal(size=(2, 2, 4, 3)), rng.normal(size=(2, 2, 5, 3)), rng.normal(size=(2, 2, 5, 3))
    if kwargs.get("is_causal"):
        k, v = k[:, :, :4], v[:, :, :4]
    masks = {"bool": rng.random((4, 5)) > 0.3, "float": rng.normal(size=(4, 5))}
    kind = kwargs.pop("mask", None)
    if kind == "bool":
        masks["bool"][:, 0] = True  # every query attends somewhere

    def build(lib, q, k, v):
        mask = None if kind is None else lib.tensor(masks[kind])
        return lib.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kwargs).sin().sum()

    _assert_same_as_torch(torch, build, [q, k, v], wrt=[0, 1, 2])


def test_a_gradient_penalty_through_multihead_attention_matches_torch(torch):
    rng = _rng()
    x = rng.normal(size=(2, 4, 6))
    models = _twins(torch, lambda lib: lib.nn.MultiheadAttention(6, 2, batch_first=True))
    grads = []
    for lib in (torch, engine):
        mha = models[lib]
        with _math_attention(lib):
            inputs = lib.tensor(x, requires_grad=True)
            out, weights = mha(inputs, inputs, inputs)
            (g,) = lib.autograd.grad(out.tanh().sum() + weights.pow(2).sum(), inputs, create_graph=True)
            (g.flatten(1).norm(2, dim=1) - 1).pow(2).mean().backward()
        grads.append({name: None if p.grad is None else p.grad.numpy() for name, p in mha.named_parameters()}
                     | {"input": inputs.grad.numpy()})
    theirs, ours = grads
    assert sorted(ours) == sorted(theirs)
    for name, t in theirs.items():
        assert (ours[name] is None) == (t is None), name
        if t is not None:
            np.testing.assert_allclose(ours[name], t, rtol=1e-9, atol=1e-11, err_msg=name)


NORMS = {
    "layer_norm": lambda F, x, w, b: F.layer_norm(x, (6,), w, b),
    "layer_norm_2d": lambda F, x, w, b: F.layer_norm(x, (4, 6), w.repeat(4).reshape(4, 6), b.repeat(4).reshape(4, 6)),
    "batch_norm": lambda F, x, w, b: F.batch_norm(x.reshape(-1, 6), None, None, w, b, training=True),
    "batch_norm_2d": lambda F, x, w, b: F.batch_norm(x.reshape(2, 6, 2, 2), None, None, w, b, training=True),
    "group_norm": lambda F, x, w, b: F.group_norm(x.reshape(2, 6, 4), 3, w, b),
    "instance_norm": lambda F, x, w, b: F.instance_norm(x.reshape(2, 6, 4), weight=w, bias=b),
}


@pytest.mark.parametrize("name", sorted(NORMS))
def test_a_gradient_penalty_through_normalization_matches_torch(torch, name):
    rng = _rng()
    x, w, b = rng.normal(size=(2, 4, 6)), rng.normal(size=6), rng.normal(size=6)

    def build(lib, x, w, b):
        return NORMS[name](lib.nn.functional, x, w, b).pow(3).sum()

    _assert_same_as_torch(torch, build, [x, w, b], wrt=[0], rtol=1e-9)


def test_a_gradient_penalty_through_batch_norm_running_stats_in_eval_matches_torch(torch):
    rng = _rng()
    x, w, b = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 2, size=3)

    def build(lib, x, w, b):
        return lib.nn.functional.batch_norm(x, lib.tensor(mean), lib.tensor(var), w, b).pow(3).sum()

    _assert_same_as_torch(torch, build, [x, w, b], wrt=[0, 1])

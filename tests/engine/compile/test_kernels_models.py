"""engine._inductor on whole models: compiled graphs equal the GraphModule (1e-5 in float64, close in float32)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine._inductor import compile_fx
from engine.fx import GraphModule
from engine.fx.tracer import capture


def compiled_and_eager(fn, args):
    """(compiled callable, GraphModule) for ``fn`` captured at ``args``."""
    graph, state, constants, _ = capture(fn, args)
    gm = GraphModule(fn if isinstance(fn, nn.Module) else state, graph, constants=constants)
    return compile_fx(gm, list(args)), gm


def assert_same(got, expected, dtype):
    got = got if isinstance(got, tuple) else (got,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(got) == len(expected)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == engine.float64 else {"rtol": 2e-4, "atol": 2e-5}
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and tuple(g.shape) == tuple(e.shape)
        np.testing.assert_allclose(g.detach().numpy(), e.detach().numpy(), **tol)


class Block(nn.Module):
    """A GPT block: pre-norm causal self-attention (explicit mask) and a GELU MLP."""

    def __init__(self, d: int, heads: int, T: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.register_buffer("mask", engine.tril(engine.ones(T, T)).view(1, 1, T, T))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = F.softmax(att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    previous = engine.get_default_dtype()
    d = getattr(engine, request.param)
    engine.set_default_dtype(d)
    yield d
    engine.set_default_dtype(previous)


def test_mlp(dtype):
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 5))
    x = engine.randn(7, 20)
    fn, gm = compiled_and_eager(model, (x,))
    with engine.no_grad():
        assert_same(fn(x), gm(x), dtype)
    assert fn.info["fallbacks"] == []


@pytest.mark.parametrize("train", [False, True])
def test_cnn_conv_bn_relu_pool_linear(dtype, train):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 10))
    model.train(train)
    x = engine.randn(2, 3, 16, 16)
    fn, gm = compiled_and_eager(model, (x,))
    bn = model[1]
    before = bn.running_mean.clone()
    with engine.no_grad():
        expected = gm(x)
        after_eager = bn.running_mean.clone()
        bn.running_mean.copy_(before)
        got = fn(x)
    assert_same(got, expected, dtype)
    # the running statistics are updated once per call, in place, as eager does
    np.testing.assert_allclose(bn.running_mean.numpy(), after_eager.numpy(), rtol=1e-6)
    assert train == (not np.allclose(after_eager.numpy(), before.numpy()))
    # eval batch norm is pointwise math; training batch norm (and num_batches_tracked += 1) run eager kernels
    assert set(fn.info["fallbacks"]) == ({"engine.nn.functional.batch_norm", "Tensor.add_"} if train else set())
    if train:
        assert int(bn.num_batches_tracked) == 3  # the capture, the GraphModule and the compiled graph: once each


def test_gpt_block(dtype):
    block = Block(16, 2, 8)
    x = engine.randn(3, 8, 16)
    fn, gm = compiled_and_eager(block, (x,))
    with engine.no_grad():
        assert_same(fn(x), gm(x), dtype)
    assert fn.info["fallbacks"] == []


def test_cross_entropy_and_softmax_family(dtype):
    def losses(logits, target):
        return (F.cross_entropy(logits, target), F.cross_entropy(logits, target, reduction="sum"),
                F.log_softmax(logits, dim=1), F.softmax(logits, dim=0), engine.logsumexp(logits, 1))

    logits = engine.randn(6, 5)
    target = engine.tensor([0, 4, 2, -100, 1, 3])
    fn, gm = compiled_and_eager(losses, (logits, target))
    assert_same(fn(logits, target), gm(logits, target), dtype)


def test_joint_forward_backward_graph(dtype):
    """A graph of the kind the frontend hands over: forward plus the backward formulas' ops."""

    def step(x, w):
        h = F.layer_norm(engine.tanh(x * 2.0 + 1.0), (8,)) @ w
        loss = F.cross_entropy(F.gelu(h), engine.arange(4) % 3)
        gx, gw = engine.autograd.grad(loss, (x, w), create_graph=True)
        return loss, gx, gw

    x = engine.randn(4, 8, requires_grad=True)
    w = engine.randn(8, 3, requires_grad=True)
    fn, gm = compiled_and_eager(step, (x, w))
    assert_same(fn(x, w), gm(x, w), dtype)
    assert fn.info["fallbacks"] == []


def test_scaled_dot_product_attention_causal(dtype):
    def attn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    q, k, v = (engine.randn(2, 2, 5, 4) for _ in range(3))
    fn, gm = compiled_and_eager(attn, (q, k, v))
    assert_same(fn(q, k, v), gm(q, k, v), dtype)


def test_embedding_lookup(dtype):
    emb = nn.Embedding(10, 4)
    idx = engine.tensor([[1, 2], [9, 0]])
    fn, gm = compiled_and_eager(emb, (idx,))
    with engine.no_grad():
        assert_same(fn(idx), gm(idx), dtype)
    with pytest.raises(IndexError, match="index out of range"):
        fn(engine.tensor([[1, 2], [10, 0]]))


class TinyGPT(nn.Module):
    def __init__(self, vocab=11, d=16, T=8):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(T, d)
        self.block = Block(d, 2, T)
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, idx, targets):
        x = self.tok(idx) + self.pos(engine.arange(idx.shape[1]))
        logits = self.head(self.ln(self.block(x)))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


@pytest.mark.parametrize("kind", ["mlp", "gpt"])
def test_training_step_through_engine_compile_equals_eager(kind, monkeypatch):
    """The frontend hands the whole step (forward, backward, AdamW) to compile_fx; 3 steps match eager."""
    from engine import _inductor

    made = []

    def spy(gm, example_inputs, mode=None, options=None):
        made.append(compile_fx(gm, example_inputs, mode, options))
        return made[-1]

    monkeypatch.setattr(_inductor, "compile_fx", spy)
    previous = engine.get_default_dtype()
    engine.set_default_dtype(engine.float64)
    try:
        def build():
            engine.manual_seed(1)
            if kind == "mlp":
                return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4)), \
                    (engine.randn(6, 12), engine.tensor([0, 1, 2, 3, 0, 1]))
            return TinyGPT(), (engine.randint(0, 11, (2, 8)), engine.randint(0, 11, (2, 8)))

        def step_of(model, optimizer):
            def step(x, y):
                optimizer.zero_grad()
                loss = model(x, y) if kind == "gpt" else F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                return loss

            return step

        runs = []
        for compiled in (False, True):
            model, batch = build()
            step = step_of(model, engine.optim.AdamW(model.parameters(), lr=1e-2))
            if compiled:
                step = engine.compile(step, backend="inductor")
            losses = [float(step(*batch)) for _ in range(3)]
            runs.append((losses, [p.detach().numpy().copy() for p in model.parameters()]))
        np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5)
        for got, expected in zip(runs[1][1], runs[0][1], strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-8)
    finally:
        engine.set_default_dtype(previous)
    assert len(made) == 1 and made[0].info["kernels"] > 0  # one captured step, compiled by this backend

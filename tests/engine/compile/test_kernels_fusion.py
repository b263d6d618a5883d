"""engine._inductor's code generator: what fuses, buffer planning, fallbacks, caching, replay without numba."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import _inductor
from engine._inductor import cache, compile_fx
from engine.fx import GraphModule
from engine.fx.tracer import capture

ROOT = Path(__file__).resolve().parents[3]


def compiled_and_eager(fn, args):
    graph, state, constants, _ = capture(fn, args)
    gm = GraphModule(state, graph, constants=constants)
    return compile_fx(gm, list(args)), gm


def chain(x, y):
    """Ten elementwise ops with scalar constants and a broadcast operand, ending in a reduction."""
    a = x * 2.0 + y
    b = engine.tanh(a) * engine.sigmoid(y)
    c = engine.exp(-b) - 1.5
    d = engine.relu(c) / (y.abs() + 1.0)
    return (d * d).sum(), d


@pytest.mark.parametrize("dtype", [engine.float64, engine.float32])
@pytest.mark.parametrize("y_shape", [(50, 20), (20,)])
def test_ten_op_chain_and_its_sum_fuse(dtype, y_shape):
    x, y = engine.randn(50, 20, dtype=dtype), engine.randn(*y_shape, dtype=dtype)
    fn, gm = compiled_and_eager(chain, (x, y))
    got, expected = fn(x, y), gm(x, y)
    tol = 1e-5 if dtype == engine.float64 else 1e-4
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype == dtype
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=tol, atol=tol)
    assert fn.info["fallbacks"] == []
    # tanh and the two exps (one inside sigmoid) run as NumPy's SIMD ufuncs; the arithmetic between them,
    # the stored output and its sum fuse into 4 kernels
    assert fn.source.count("np.tanh(") == 1 and fn.source.count("np.exp(") == 2
    if y_shape == (50, 20):
        assert fn.info["kernels"] == 4 and fn.info["steps"] == 7
    else:  # ops on the broadcast operand alone run once over its 20 elements, in kernels of their own
        assert fn.info["kernels"] == 6 and fn.info["steps"] == 9
    assert "@njit(cache=True" in fn.kernel_sources[0] and "def call(" in fn.source


def test_layer_norm_is_one_row_kernel_and_softmax_two():
    x = engine.randn(4, 6, 32)
    w, b = engine.randn(32), engine.randn(32)
    # layer_norm: mean, centred variance and the affine output in one kernel (three passes over each row);
    # softmax: max and x - max, then NumPy's exp, then sum and divide
    for f, kernels in ((lambda t: F.layer_norm(t, (32,), w, b), 1), (lambda t: F.softmax(t, dim=-1), 2)):
        fn, gm = compiled_and_eager(f, (x,))
        np.testing.assert_allclose(fn(x).numpy(), gm(x).numpy(), rtol=1e-5, atol=1e-6)
        assert fn.info["kernels"] == kernels, fn.kernel_sources
        assert "for i0 in range(e1):" in fn.kernel_sources[0]  # rows outer, the reduced dim inner


def test_dtype_promotion_follows_eager():
    def mixed(i, f, m):
        return i * 2 + f, (i > 1) & m, i / 3, f.double() * 0.1, engine.where(m, i, f)

    i = engine.tensor([[1, 2, 3], [4, 5, 6]])
    f = engine.randn(3)
    m = engine.tensor([True, False, True])
    fn, gm = compiled_and_eager(mixed, (i, f, m))
    for g, e in zip(fn(i, f, m), gm(i, f, m), strict=True):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-6)


def test_unlowered_ops_fall_back_to_their_eager_kernel():
    def f(x):
        return engine.cumsum(engine.exp(x), 1).sort(dim=1).values * 2.0

    x = engine.randn(3, 5)
    fn, gm = compiled_and_eager(f, (x,))
    np.testing.assert_allclose(fn(x).numpy(), gm(x).numpy(), rtol=1e-6)
    assert "engine.cumsum" in fn.info["fallbacks"]


def test_dropout_draws_from_the_engine_generator_exactly_as_eager():
    def f(x):
        return F.dropout(x * 3.0, p=0.3, training=True) + 1.0

    x = engine.randn(64, 16)
    fn, gm = compiled_and_eager(f, (x,))
    engine.manual_seed(7)
    expected = [gm(x).numpy() for _ in range(2)]
    engine.manual_seed(7)
    got = [fn(x).numpy() for _ in range(2)]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    assert not np.array_equal(got[0], got[1])


def test_outputs_are_fresh_and_buffers_are_reused():
    def mlp(x, w1, w2, w3):
        h = engine.relu(x @ w1) * 2.0
        h = engine.tanh(h @ w2) + 1.0
        return (h @ w3).sum(1)

    args = (engine.randn(8, 16), engine.randn(16, 16), engine.randn(16, 16), engine.randn(16, 4))
    fn, gm = compiled_and_eager(mlp, args)
    first = fn(*args)
    kept = first.numpy().copy()
    second = fn(args[0] * 2.0, *args[1:])
    np.testing.assert_array_equal(first.numpy(), kept)  # the next replay did not overwrite it
    assert not np.shares_memory(first.numpy(), second.numpy())
    np.testing.assert_allclose(second.numpy(), gm(args[0] * 2.0, *args[1:]).numpy(), rtol=1e-5)
    program = fn._first
    planned = len(program.plan.slot_of)
    assert fn.info["buffers"] < planned  # non-overlapping lifetimes share a buffer


def test_new_shape_recompiles_and_reuses_kernels():
    x, y = engine.randn(10, 20), engine.randn(20)
    fn, gm = compiled_and_eager(chain, (x, y))
    fn(x, y)
    compiled_before = cache.stats["compiled"]
    x2 = engine.randn(33, 20)
    for _ in range(2):
        got = fn(x2, y)
        for g, e in zip(got, gm(x2, y), strict=True):
            np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)
    assert fn.info["programs"] == 2
    assert cache.stats["compiled"] == compiled_before  # same kernel source: nothing new to compile


@pytest.mark.slow
def test_kernels_are_cached_on_disk_for_the_next_process(tmp_path):
    script = (
        "import engine, sys\n"
        "from engine.fx import GraphModule\n"
        "from engine.fx.tracer import capture\n"
        "from engine._inductor import compile_fx, cache\n"
        "def f(x):\n"
        "    return engine.sigmoid(x * 1.25 + 0.5).sum(1)\n"
        "x = engine.randn(4, 8)\n"
        "g, st, c, _ = capture(f, (x,))\n"
        "fn = compile_fx(GraphModule(st, g, constants=c), [x])\n"
        "fn(x)\n"
        "kernel = next(v for k, v in fn._first.ns.items() if k.startswith('_kernel'))\n"
        "print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))\n"
    )
    env = {**os.environ, "KILN_INDUCTOR_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                           timeout=300).stdout.split() for _ in range(2)]
    assert runs[0] == ["0", "1"], runs  # first process compiles
    assert runs[1] == ["1", "0"], runs  # second one loads the machine code numba cached
    assert list(tmp_path.glob("k_*.py"))


def test_without_numba_the_program_replays_unfused(monkeypatch):
    monkeypatch.setattr(_inductor, "has_numba", lambda: False)
    monkeypatch.setattr(_inductor, "_numba_warned", False)
    x, y = engine.randn(6, 20), engine.randn(20)
    graph, state, constants, _ = capture(chain, (x, y))
    gm = GraphModule(state, graph, constants=constants)
    with pytest.warns(RuntimeWarning, match="numba is not installed"):
        fn = compile_fx(gm, [x, y])
    for g, e in zip(fn(x, y), gm(x, y), strict=True):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-5, atol=1e-6)
    assert fn.info["numba"] is False and fn.info["kernels"] == 0
    assert "out=" in fn.source
    compile_fx(gm, [x, y])  # warned once per process, not per graph


def test_in_place_updates_of_parameters_are_seen_by_the_next_replay():
    w = engine.randn(5)

    def f(x):
        return x * w + 1.0

    graph, state, constants, _ = capture(f, (engine.randn(5),))
    gm = GraphModule(state, graph, constants=constants)
    x = engine.randn(5)
    fn = compile_fx(gm, [x])
    first = fn(x).numpy().copy()
    name = next(n.target for n in gm.graph.nodes if n.op == "get_attr")
    with engine.no_grad():
        gm.get_attr_value(name).mul_(2.0)
    np.testing.assert_allclose(fn(x).numpy(), gm(x).numpy(), rtol=1e-6)
    assert not np.allclose(first, fn(x).numpy())

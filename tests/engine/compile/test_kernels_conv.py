"""engine._inductor's lowered Conv2d in a training step (numba im2col/col2im, whole-batch GEMMs).

The compiled step's output, input gradient, weight gradient and bias gradient equal the eager step's
(1e-10 in float64, close in float32) for strides, paddings, dilations, groups,
a non-contiguous input and a conv without bias, and the program runs no eager conv kernel.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine._inductor import has_numba
from tests.engine.compile.test_kernels_optim import program_of

pytestmark = pytest.mark.skipif(not has_numba(), reason="the lowered conv uses numba im2col/col2im kernels")

CASES = {
    "plain": {"c": 3, "o": 4, "k": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 1},
    "stride2-pad0": {"c": 3, "o": 5, "k": 3, "stride": 2, "padding": 0, "dilation": 1, "groups": 1},
    "stride-rect": {"c": 2, "o": 3, "k": (2, 3), "stride": (2, 1), "padding": (1, 2), "dilation": 1, "groups": 1},
    "dilation": {"c": 2, "o": 3, "k": 3, "stride": 1, "padding": 2, "dilation": 2, "groups": 1},
    "dilated-strided": {"c": 2, "o": 2, "k": 3, "stride": (3, 2), "padding": (0, 3), "dilation": (2, 1), "groups": 1},
    "groups": {"c": 4, "o": 6, "k": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 2},
    "depthwise": {"c": 3, "o": 3, "k": 3, "stride": 2, "padding": 1, "dilation": 1, "groups": 3},
    "1x1": {"c": 4, "o": 2, "k": 1, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "padding-wider-than-kernel": {"c": 1, "o": 2, "k": 2, "stride": 1, "padding": 3, "dilation": 1, "groups": 1},
}


def _step(x, weight, bias, scale, cfg):
    def step():
        for t in (x, weight, bias):
            if t is not None:
                t.grad = None
        out = F.conv2d(x, weight, bias, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"])
        (F.relu(out) * scale[..., :out.shape[2], :out.shape[3]]).sum().backward()
        grads = tuple(t.grad for t in (x, weight, bias) if t is not None)
        return (out, *grads)

    return step


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_training_step_equals_eager(case, dtype, with_bias):
    cfg = CASES[case]
    rng = np.random.default_rng(1)
    np_dtype = getattr(np, dtype)
    k = cfg["k"] if isinstance(cfg["k"], tuple) else (cfg["k"], cfg["k"])
    x = engine.tensor(rng.standard_normal((2, cfg["c"], 7, 9)).astype(np_dtype), requires_grad=True)
    weight = engine.tensor(rng.standard_normal((cfg["o"], cfg["c"] // cfg["groups"], *k)).astype(np_dtype),
                           requires_grad=True)
    bias = engine.tensor(rng.standard_normal(cfg["o"]).astype(np_dtype), requires_grad=True) if with_bias else None
    scale = engine.tensor(rng.standard_normal((2, cfg["o"], 16, 16)).astype(np_dtype))
    step = _step(x, weight, bias, scale, cfg)
    compiled = engine.compile(step, backend="inductor")
    for _ in range(2):  # replays reuse the program's buffers: the second call must be as right as the first
        got = [t.detach().numpy().copy() for t in compiled()]
    expected = [t.detach().numpy() for t in step()]
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-4}
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, **tol)
    assert not any("with_ctx" in f for f in program_of(compiled).info["fallbacks"])


def test_conv2d_of_a_non_contiguous_input_and_frozen_input():
    """The conv reads a transposed view directly; an input without grad skips the input gradient."""
    rng = np.random.default_rng(2)
    x = engine.tensor(rng.standard_normal((3, 2, 8, 6)))
    weight = engine.tensor(rng.standard_normal((4, 2, 3, 3)), requires_grad=True)
    bias = engine.tensor(rng.standard_normal(4), requires_grad=True)
    scale = engine.tensor(rng.standard_normal((3, 4, 16, 16)))
    cfg = {"stride": 1, "padding": 1, "dilation": 1, "groups": 1}

    def step():
        weight.grad = bias.grad = None
        out = F.conv2d(x.transpose(2, 3), weight, bias, **cfg)
        (F.relu(out) * scale[..., :out.shape[2], :out.shape[3]]).sum().backward()
        return out, weight.grad, bias.grad

    compiled = engine.compile(step, backend="inductor")
    for _ in range(2):
        got = [t.detach().numpy().copy() for t in compiled()]
    for g, e in zip(got, [t.detach().numpy() for t in step()], strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)
    assert not any("with_ctx" in f for f in program_of(compiled).info["fallbacks"])


def test_conv_stack_with_pooling_trains_like_eager():
    """conv-relu-pool-conv-relu-pool-linear with SGD momentum (float64): three compiled steps equal three eager."""
    def build():
        engine.manual_seed(0)
        nn = engine.nn
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(6 * 2 * 2, 5)).double()

    x = engine.randn(4, 3, 8, 8, dtype=engine.float64)
    y = engine.tensor(np.array([0, 1, 4, 2]))
    losses = []
    for compile_it in (False, True):
        model = build()
        opt = engine.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(model=model, opt=opt):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = engine.compile(step, backend="inductor") if compile_it else step
        losses.append([float(fn()) for _ in range(3)] + [model[0].weight.detach().numpy().copy()])
    np.testing.assert_allclose(losses[1][:3], losses[0][:3], rtol=1e-10)
    np.testing.assert_allclose(losses[1][3], losses[0][3], rtol=1e-10, atol=1e-12)


def test_weight_gradient_gemm_over_a_long_reduction_is_chunked_and_exact():
    from engine._inductor.conv import _CHUNK, skinny_gemm

    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 2 * _CHUNK + 17))
    b = rng.standard_normal((2 * _CHUNK + 17, 3))
    out = np.full((5, 3), np.nan)
    skinny_gemm(a, b.T.copy().T, out)  # a transposed (F-ordered) right operand, as the lowering passes it
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-10)


def test_small_gemms_run_on_one_blas_thread_and_restore_the_pool():
    from threadpoolctl import threadpool_info

    from engine._inductor import kernels

    before = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((7, 9, 4)), rng.standard_normal((4, 6))
    out = np.empty((7, 9, 6))
    kernels.matmul(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    assert [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"] == before


def test_large_gemms_run_on_one_blas_thread_only_while_the_cores_are_busy(monkeypatch):
    from engine._inductor import kernels

    entered: list = []

    class Recording(kernels._one_blas_thread):
        def __enter__(self):
            entered.append(True)
            return super().__enter__()

    monkeypatch.setattr(kernels, "_one_blas_thread", Recording)
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((512, 512)), rng.standard_normal((512, 512))
    out = np.empty((512, 512))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert kernels._runnable() >= 1  # this thread is running
    for load, expect in ((1.0, False), (cores + 1.0, cores > 1)):
        monkeypatch.setattr(kernels, "_runnable", lambda load=load: load)
        monkeypatch.setattr(kernels, "_LOAD", [-1.0, False])
        entered.clear()
        kernels.matmul(a, b, out)
        np.testing.assert_allclose(out, a @ b, rtol=1e-12)
        assert bool(entered) is expect


def test_this_processs_own_runnable_threads_count_as_its_blas_team_not_as_other_load(monkeypatch):
    # an idle machine read as busy ran the compiled MLP's GEMMs on one thread (25 ms a step against 13)
    from engine._inductor import kernels

    assert kernels._own_runnable() >= 1  # this thread is running
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max([c.get_num_threads() for c in kernels._blas_pools()] + [1])
    # two runnable threads: this one and its BLAS worker still spinning, or this one and another process's
    for own, busy in ((2, cores > 1 and max(0, 2 - min(2, threads)) + threads > cores), (1, cores > 1 and 1 + threads > cores)):
        monkeypatch.setattr(kernels, "_runnable", lambda: 2.0)
        monkeypatch.setattr(kernels, "_own_runnable", lambda own=own: own)
        monkeypatch.setattr(kernels, "_LOAD", [-1.0, False])
        assert kernels._cores_busy() is busy

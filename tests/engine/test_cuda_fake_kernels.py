"""tests/fake_cupy runs CUDA C kernel source with C's semantics, records graph captures, and stays strict."""

from __future__ import annotations

import fake_cupy as cp
import numpy as np
import pytest
from fake_cupy._kernels import KernelSourceError

import engine


def test_elementwise_kernels_follow_c_types_and_operators():
    k = cp.ElementwiseKernel(
        "T x, int32 n, uint64 big", "T y, int64 q, uint64 w",
        "T t = x > (T)0 ? x * (T)2 : (T)-1; y = t + (T)(n / 2); q = -7 / n; w = big + (unsigned long long)i; "
        "w ^= w >> 3; w <<= 1", "c_semantics")
    x = cp.asarray(np.array([-1.5, 0.0, 2.5], dtype=np.float32))
    y, q, w = k(x, np.int32(2), np.uint64(2**63))
    assert y.dtype == np.float32 and y.get().tolist() == [-1.0 + 1, -1.0 + 1, 5.0 + 1]
    assert q.get().tolist() == [-3, -3, -3]  # C truncates toward zero
    expected = [(((2**63 + i) ^ ((2**63 + i) >> 3)) << 1) % 2**64 for i in range(3)]
    assert w.dtype == np.uint64 and w.get().tolist() == expected
    f = cp.ElementwiseKernel("float32 x", "float32 y", "y = x * 0.1", "promotes_to_double")
    assert f(cp.asarray(np.float32([3.0]))).get()[0] == np.float32(np.float64(np.float32(3.0)) * 0.1)


def test_reduction_kernels_reduce_over_axes_with_post_map():
    norm = cp.ReductionKernel("T x", "T y", "x * x", "a + b", "y = sqrt(a)", "0", "l2norm")
    m = cp.asarray(np.arange(6.0).reshape(2, 3))
    assert np.allclose(norm(m, axis=1).get(), np.sqrt((np.arange(6.0).reshape(2, 3) ** 2).sum(1)))
    assert norm(m, axis=0, keepdims=True).shape == (1, 3) and norm(m).shape == ()
    big = cp.ReductionKernel("T x", "T y", "x", "max(a, b)", "y = a", None, "rowmax")
    with pytest.raises(ValueError, match="no identity"):
        big(cp.zeros((0,)), axis=0)


def test_kernels_refuse_numpy_arrays_and_unknown_source():
    k = cp.ElementwiseKernel("T x", "T y", "y = x + (T)1", "inc")
    with pytest.raises(TypeError, match="Unsupported type"):
        k(np.ones(3))
    with pytest.raises(KernelSourceError, match="unsupported function"):
        cp.ElementwiseKernel("T x", "T y", "y = frobnicate(x)", "bad")(cp.ones(2))
    with pytest.raises(KernelSourceError, match="unsupported reduce_expr"):
        cp.ReductionKernel("T x", "T y", "x", "a - b", "y = a", "0", "bad")
    with pytest.raises(KernelSourceError, match="cannot read"):
        cp.ElementwiseKernel("T x", "T y", "y = x @ 2", "bad")


def test_graph_capture_replays_kernels_ufuncs_and_in_place_updates():
    x = cp.zeros(4, dtype=np.float32)
    acc = cp.zeros(4, dtype=np.float32)
    k = cp.ElementwiseKernel("T x", "T y", "y = exp(x)", "exp")
    s = cp.cuda.Stream()
    with s:
        s.begin_capture()
        assert s.is_capturing()
        y = k(x)
        acc += y
        z = cp.sqrt(acc) * 2
        graph = s.end_capture()
    x[...] = cp.asarray(np.log(np.float32([1, 4, 9, 16])))
    graph.launch()
    assert acc.get().tolist() == [1.0, 4.0, 9.0, 16.0]  # as on CUDA: the capture ran nothing, the launch once
    assert np.allclose(z.get(), 2 * np.sqrt([1, 4, 9, 16]))
    with pytest.raises(RuntimeError, match="null stream"):
        cp.cuda.Stream.null.begin_capture()


def test_the_memory_pool_counts_live_arrays():
    pool = cp.get_default_memory_pool()
    before = pool.used_bytes()
    a = cp.empty(1000, dtype=np.float64)
    view = a[10:]
    assert pool.used_bytes() - before == 8000
    del a
    assert pool.used_bytes() - before == 8000  # the view keeps the memory alive, as in CuPy
    del view
    assert pool.used_bytes() == before and pool.free_bytes() >= 8000
    pool.free_all_blocks()
    assert pool.free_bytes() == 0


@pytest.mark.gpu
def test_engine_backends_flags_are_accepted_as_torch_s(cuda_backend):
    flags = engine.backends.cuda.matmul
    assert flags.allow_tf32 is False
    flags.allow_tf32 = True
    try:
        assert engine.backends.cuda.matmul.allow_tf32 is True
        y = engine.ones(4, 4, device="cuda") @ engine.ones(4, 4, device="cuda")
        assert float(y.sum().cpu()) == 64.0
    finally:
        flags.allow_tf32 = False
    with pytest.raises(AttributeError, match="Unknown attribute"):
        flags.allow_tf33 = True
    with pytest.raises(TypeError, match="bool"):
        flags.allow_tf32 = "yes"
    assert engine.backends.cuda.is_built() is True
    with engine.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=True):
        assert engine.backends.cudnn.benchmark is True
    assert engine.backends.cudnn.benchmark is False and engine.backends.cudnn.is_available() is False

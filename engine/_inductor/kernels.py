"""Array kernels the generated code calls directly: GEMM into ``out=``, im2col convolution with its
workspaces allocated once, embedding lookup, NLL gather, and the engine generator's uniforms."""

from __future__ import annotations

import os
import time

import numpy as np


def matmul(a, b, out):
    # NOTE: a stacked (..., M, K) @ (K, N) runs as one 2-d GEMM when the stack folds into M without a copy
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
        a, out = a.reshape(-1, a.shape[-1]), out.reshape(-1, out.shape[-1])
    if a.ndim >= 2 and b.ndim >= 2 and (a.shape[-2] * a.shape[-1] * b.shape[-1] < _SMALL_GEMM or _cores_busy()):
        with _one_blas_thread():
            np.matmul(a, b, out=out)
    else:
        np.matmul(a, b, out=out)


# NOTE: OpenBLAS splits even small GEMMs over its threads, which spin-wait for each other; on a loaded
# machine a descheduled partner stalls the whole GEMM (measured with 2 threads on 2 shared cores:
# (1024, 128) @ (128, 384) 14-65 ms on two threads, 1.3 ms on one; (128, 4096) @ (4096, 10) 4 ms vs 0.3 ms).
# Below 4M multiply-adds (attention's per-head products, a small linear's weight gradient) the split
# saves nothing even on an idle machine, so those run on one thread. Larger GEMMs (GPT's linears,
# im2col convolutions) split over the threads only while the machine has a core to spare: when more threads are
# runnable right now than there are cores this process may use, a second BLAS thread mostly spins
# (measured on 2 cores at load 9-12: (64, 288) @ (288, 32768) 72-103 ms wall, 21 ms CPU on one thread;
# 150-220 ms, 34-39 ms CPU on two). The count of runnable threads (Linux's /proc/loadavg, which counts
# this thread too) is read at most every 0.2 s; elsewhere the 1-minute load average stands in for it.
_SMALL_GEMM = 1 << 22
_BLAS: list = []
_LOAD = [-1.0, False]  # when the load was last read (monotonic seconds), and whether the cores were busy


def _runnable() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return os.getloadavg()[0] + 1  # NOTE: + 1: as /proc/loadavg's count, this thread included


def _own_runnable() -> int:
    """This process's threads running or ready to run now (Linux's /proc/self/task), at least this one."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        end = stat.rfind(b")")  # the state follows the command name, which may hold spaces or parentheses
        count += stat[end + 2 : end + 3] == b"R"
    return max(count, 1)


def _blas_pools() -> list:
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.extend(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:
            _BLAS.append(None)
    return [c for c in _BLAS if c is not None]


def _cores_busy() -> bool:
    now = time.monotonic()
    if now - _LOAD[0] >= 0.2:
        try:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            threads = max([c.get_num_threads() for c in _blas_pools()] + [1])
            # NOTE: the other runnable threads plus the whole BLAS team must fit on the cores: with one other
            # thread running on 2 cores, a 2-thread (1024, 128) @ (128, 512) took 7-8 ms CPU and wall, 1.7 ms on one.
            # This process's own runnable threads, up to the team's size, are the team (this thread, and BLAS
            # workers still spinning after the last GEMM), not others: counting them kept an idle machine busy.
            others = _runnable() - min(_own_runnable(), threads)
            _LOAD[1] = cores > 1 and others + threads > cores
        except OSError:  # no load average on this platform
            _LOAD[1] = False
        _LOAD[0] = now
    return bool(_LOAD[1])


class _one_blas_thread:
    """Run the BLAS pools on one thread inside the block (two ctypes calls each way, no pool scan)."""

    __slots__ = ("saved",)

    def __enter__(self):
        self.saved = [(c, c.get_num_threads()) for c in _blas_pools()]
        for c, n in self.saved:
            if n != 1:
                c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for c, n in self.saved:
            if n != 1:
                c.set_num_threads(n)
        return False


def device_matmul(a, b, out):
    """``matmul`` on CUDA: CuPy's matmul (cuBLAS) into the planned buffer."""
    _device_xp(a).matmul(a, b, out=out)


def _device_xp(array):
    from engine.backend import array_module_of

    return array_module_of(array)


def fill(value, out):
    out.fill(value)


def embed_slice(g, index, out):
    """Zeros with ``g`` written at a basic ``index`` (the gradient of slicing)."""
    out.fill(0)
    out[index] = g


def gather(x, index, dim: int, out):
    xp = np if isinstance(x, np.ndarray) else _device_xp(x)
    xp.copyto(out, xp.take_along_axis(x, index, axis=dim))


def uniform(shape, dtype):
    """The dropout uniforms, drawn from the engine's default CPU generator exactly as eager draws them."""
    from engine import random

    gen = random.default_generator
    return gen.uniform_array(shape, np.float64 if dtype == np.float64 else np.float32)


def embedding(weight, indices, out):
    n = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise IndexError("index out of range in self")
    np.take(weight, indices, axis=0, out=out)


EMBEDDING_BACKWARD_SOURCE = """from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def embedding_backward(g, indices, padding_idx, out):
    rows, d = out.shape
    out[:, :] = 0
    for i in range(indices.shape[0]):
        r = indices[i]
        if r < 0 or r >= rows:
            raise IndexError("index out of range in self")
        for j in range(d):
            out[r, j] += g[i, j]
    if padding_idx >= 0:
        out[padding_idx, :] = 0
"""
_EMBEDDING_BACKWARD: list = []


def embedding_backward(g, indices, padding_idx: int, out):
    """The embedding weight's gradient: rows of ``g`` (n, d) added at ``indices`` (n,) in order, as np.add.at
    adds them (one numba loop instead of its ~1 us per row); the ``padding_idx`` row (-1: none) zero."""
    if not _EMBEDDING_BACKWARD:
        from engine._inductor.cache import load_kernel

        _EMBEDDING_BACKWARD.append(load_kernel(EMBEDDING_BACKWARD_SOURCE, "embedding_backward"))
    _EMBEDDING_BACKWARD[0](g, indices, padding_idx, out)


def nll(logp, target, ignore_index: int, reduction: str, out):
    """Negative log-likelihood at class indices; ``mean`` averages over targets != ignore_index."""
    n, c = logp.shape
    valid = target != ignore_index
    if target.size and bool((((target < 0) | (target >= c)) & valid).any()):
        raise IndexError(f"Target {int(target[((target < 0) | (target >= c)) & valid][0])} is out of bounds.")
    picked = logp[np.arange(n), np.where(valid, target, 0)]
    losses = np.where(valid, -picked, 0.0).astype(logp.dtype, copy=False)
    if reduction == "none":
        out[...] = losses
    elif reduction == "sum":
        out[...] = losses.sum()
    else:
        count = int(valid.sum())
        out[...] = losses.sum() / count if count else np.nan


def max_pool2d(x, kh: int, kw: int, out):
    """Max over non-overlapping kh x kw windows that tile the last two dims: one strided maximum per offset."""
    np.copyto(out, x[..., 0::kh, 0::kw])
    for i in range(kh):
        for j in range(kw):
            if i or j:
                np.maximum(out, x[..., i::kh, j::kw], out=out)


class Conv2d:
    """conv2d as im2col + one GEMM, with the padded input and the columns allocated once.

    The columns are laid out (C*kh*kw, N*Ho*Wo), so the GEMM is one large ``W (O, C*kh*kw) @ cols``
    (a batched GEMM with a broadcast weight runs far slower in NumPy) writing (O, N, Ho, Wo); the
    lowering reads it through a transposed view, so the bias/activation kernel after it writes NCHW.
    """

    def __init__(self, x_shape, w_shape, stride, padding, dilation, dtype):
        n, c, h, w = x_shape
        o, _, kh, kw = w_shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        self.padding = (ph, pw)
        self.hw = (h, w)
        hp, wp = h + 2 * ph, w + 2 * pw
        self.ho, self.wo = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
        self.geometry = (n, c, kh, kw, sh, sw, dh, dw, o)
        self.padded = np.zeros((n, c, hp, wp), dtype) if ph or pw else None
        self.cols = np.empty((c, kh, kw, n, self.ho, self.wo), dtype)
        self.__name__ = "conv2d"

    def __call__(self, x, weight, out):
        _, c, kh, kw, sh, sw, dh, dw, o = self.geometry
        src = x
        if self.padded is not None:
            (ph, pw), (h, w) = self.padding, self.hw
            self.padded[:, :, ph:ph + h, pw:pw + w] = x
            src = self.padded
        s_n, s_c, s_h, s_w = src.strides
        windows = np.lib.stride_tricks.as_strided(
            src, self.cols.shape, (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw), writeable=False)
        np.copyto(self.cols, windows)
        np.matmul(weight.reshape(o, -1), self.cols.reshape(c * kh * kw, -1), out=out.reshape(o, -1))


# the kernels a CUDA program may call (they compute with the array module of their arguments)
DEVICE_NEUTRAL = frozenset({matmul, device_matmul, fill, embed_slice, gather})

"""Sparse (COO) @ dense as one autograd Function.

The product is a gather of the dense rows named by the column indices, scaled by the values, and a
scatter-add into the output rows: segment sums (``np.add.reduceat``) on NumPy, ``bincount`` with weights on
CuPy (no SciPy). The backward is PyTorch's: ``grad_dense = S^T @ grad`` (the same Function with rows and
columns swapped, so it differentiates again) and ``grad_values[k] = <grad[row_k], dense[col_k]>`` at the stored entries.
"""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.tensor import _make


def scatter_rows(rows, contrib, n_rows: int, xp):
    """``out[r] += contrib[k]`` for ``r = rows[k]``: an (n_rows, k) array in ``contrib``'s dtype."""
    width = contrib.shape[1]
    if width == 0 or rows.shape[0] == 0:
        return xp.zeros((n_rows, width), dtype=contrib.dtype)
    if xp is np:  # segment sums over rows sorted once: several times faster than bincount on the CPU
        order = None if bool((rows[1:] >= rows[:-1]).all()) else np.argsort(rows, kind="stable")
        sorted_rows = rows if order is None else rows[order]
        starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
        out = np.zeros((n_rows, width), dtype=contrib.dtype)
        out[sorted_rows[starts]] = np.add.reduceat(contrib if order is None else contrib[order], starts, axis=0)
        return out
    flat = (rows[:, None] * width + xp.arange(width)[None, :]).ravel()
    summed = xp.bincount(flat, weights=contrib.ravel().astype(xp.float64), minlength=n_rows * width)
    return summed.reshape(n_rows, width).astype(contrib.dtype, copy=False)


class SparseDenseMM(Function):
    """``values`` at (``rows``, ``cols``) of an ``n_rows`` x ``dense.shape[0]`` matrix, times ``dense``."""

    @staticmethod
    def forward(ctx, values, dense, rows, cols, n_rows: int):
        ctx.save_for_backward(values, dense, rows, cols)
        ctx.n_cols = dense.shape[0]
        xp = dense._device.xp
        contrib = values._data[:, None] * dense._data[cols._data]
        return _make(scatter_rows(rows._data, contrib, n_rows, xp), dense._dtype, dense._device)

    @staticmethod
    def backward(ctx, grad):
        values, dense, rows, cols = ctx.saved_tensors
        grad_values = grad_dense = None
        if ctx.needs_input_grad[0]:
            grad_values = (grad[rows] * dense[cols]).sum(-1)
        if ctx.needs_input_grad[1]:
            grad_dense = SparseDenseMM.apply(values, grad, cols, rows, ctx.n_cols)
        return grad_values, grad_dense, None, None, None

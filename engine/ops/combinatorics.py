"""Products and index sets: kron, tensordot, vdot, addr, addbmm, cartesian_prod, combinations,
tril_indices, triu_indices.

The tensor-valued ones are built from differentiable engine ops (einsum, indexing, reshape).
"""

from __future__ import annotations

import itertools

import numpy as np

from engine.dtypes import int64
from engine.ops.linalg import einsum, matmul
from engine.ops.shape import reshape, stack
from engine.tensor import Tensor, wrap


def kron(input, other) -> Tensor:
    """The Kronecker product (over all dims, the shorter tensor padded with leading ones)."""
    ndim = max(input._data.ndim, other._data.ndim)
    a = reshape(input, (1,) * (ndim - input._data.ndim) + input._data.shape)
    b = reshape(other, (1,) * (ndim - other._data.ndim) + other._data.shape)
    # interleave the dims: (a0, b0, a1, b1, ...) then merge each pair
    a_view, b_view = [], []
    for s in a._data.shape:
        a_view += [s, 1]
    for s in b._data.shape:
        b_view += [1, s]
    out = reshape(a, tuple(a_view)) * reshape(b, tuple(b_view))
    return reshape(out, tuple(x * y for x, y in zip(a._data.shape, b._data.shape, strict=True)))


def tensordot(a, b, dims=2, out=None) -> Tensor:
    """Contract the last ``dims`` dims of ``a`` with the first of ``b`` (or the listed dim pairs)."""
    if out is not None:
        raise TypeError("tensordot(): out= is not supported by the engine; assign the result instead")
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        dims_a = list(range(a._data.ndim - dims, a._data.ndim))
        dims_b = list(range(dims))
    else:
        dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
    dims_a = [d % a._data.ndim for d in dims_a]
    dims_b = [d % b._data.ndim for d in dims_b]
    if len(dims_a) != len(dims_b):
        raise RuntimeError("both dimension lists should have same length")
    for da, db in zip(dims_a, dims_b, strict=True):
        if a._data.shape[da] != b._data.shape[db]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {a._data.shape[da]} in "
                               f"dim {da} and second has size {b._data.shape[db]} in dim {db}")
    free_a = [d for d in range(a._data.ndim) if d not in dims_a]
    free_b = [d for d in range(b._data.ndim) if d not in dims_b]
    left = reshape(a.permute(*free_a, *dims_a), (int(np.prod([a._data.shape[d] for d in free_a])), -1))
    right = reshape(b.permute(*dims_b, *free_b), (-1, int(np.prod([b._data.shape[d] for d in free_b]))))
    shape = tuple(a._data.shape[d] for d in free_a) + tuple(b._data.shape[d] for d in free_b)
    return reshape(matmul(left, right), shape)


def vdot(input, other) -> Tensor:
    """The dot product of two 1-d tensors, conjugating the first."""
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input._data.ndim}D and {other._data.ndim}D tensors")
    if input._dtype is not other._dtype:
        raise RuntimeError(f"expected both vectors to have same dtype, but found {input._dtype.name} and "
                           f"{other._dtype.name}")
    first = input.conj() if input.is_complex() else input
    return einsum("i,i->", first, other)


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one element from each 1-d tensor, as rows (a 1-d tensor for one input)."""
    from engine.ops.split_stack import meshgrid

    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return stack([reshape(g, (-1,)) for g in grids], 1)


def combinations(input, r: int = 2, with_replacement: bool = False) -> Tensor:
    """Length-``r`` combinations of a 1-d tensor's elements, as rows (itertools' order)."""
    if input._data.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input._data.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return input.new_empty(0)
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = list(pick(range(input._data.shape[0]), r))
    if not rows:
        return input.new_empty(0, r)
    index = wrap(input._device.xp.asarray(np.array(rows, dtype=np.int64)), input._device)
    return input[index]


def _triangle_indices(row: int, col: int, offset: int, lower: bool, dtype, device) -> Tensor:
    from engine.creation import tensor

    r, c = np.indices((row, col))
    keep = (c - r <= offset) if lower else (c - r >= offset)
    coords = np.stack([r[keep], c[keep]])
    return tensor(coords, dtype=dtype or int64, device=device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None) -> Tensor:
    """The (2, N) coordinates of the lower triangle of a ``row`` x ``col`` matrix, row by row."""
    return _triangle_indices(row, col, offset, True, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None) -> Tensor:
    """The (2, N) coordinates of the upper triangle of a ``row`` x ``col`` matrix, row by row."""
    return _triangle_indices(row, col, offset, False, dtype, device)


def _blend(input, product, beta, alpha) -> Tensor:
    # NOTE: beta == 0 ignores input entirely (NaN/inf in it do not propagate), as in PyTorch.
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        from engine.ops.shape import broadcast_shapes

        return scaled.expand(broadcast_shapes(tuple(input.shape), tuple(scaled.shape)))
    return (input if beta == 1 else input * beta) + scaled


def addr(input, vec1, vec2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``."""
    if vec1.dim() != 1 or vec2.dim() != 1:
        raise RuntimeError(f"addr: Expected 1-D argument vec1, but got {vec1.dim()}-D")
    return _blend(input, vec1.unsqueeze(1) * vec2.unsqueeze(0), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * sum_i batch1[i] @ batch2[i]``."""
    if batch1.dim() != 3 or batch2.dim() != 3:
        raise RuntimeError("batch1 and batch2 must be 3D tensors")
    return _blend(input, einsum("bij,bjk->ik", batch1, batch2), beta, alpha)

"""More splitting, stacking and layout ops, built on ``shape.py``: tensor_split, hsplit/vsplit/dsplit,
split_with_sizes, column_stack/row_stack/dstack, atleast_3d, ravel, narrow_copy, rot90, diagflat,
block_diag, meshgrid, and the scatter forms of slicing (slice_scatter, select_scatter, diagonal_scatter).
"""

from __future__ import annotations

from engine.ops.diagonal import diag, diagonal
from engine.ops.indexing import IndexPut
from engine.ops.reduction import normalize_dim
from engine.ops.shape import cat, flip, narrow, reshape, split, transpose
from engine.tensor import Tensor


def tensor_split(input, indices_or_sections, dim: int = 0) -> tuple:
    """Views split into ``sections`` nearly equal parts (the first ones one larger), or at ``indices``."""
    dim = normalize_dim(dim, input._data.ndim)
    size = input._data.shape[dim]
    if isinstance(indices_or_sections, Tensor):
        if indices_or_sections._data.ndim > 1:
            raise RuntimeError("tensor_split expected tensor_indices_or_sections to be a zero-dimensional or "
                               "one-dimensional tensor")
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, int):
        sections = indices_or_sections
        if sections <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {sections}")
        small, extra = divmod(size, sections)
        bounds, start = [], 0
        for k in range(sections - 1):
            start += small + (1 if k < extra else 0)
            bounds.append(start)
    else:
        bounds = list(indices_or_sections)
    pieces, start = [], 0
    for stop in [*bounds, size]:
        stop = max(min(stop, size), start)
        pieces.append(narrow(input, dim, start, stop - start))
        start = stop
    return tuple(pieces)


def _split_by(input, indices_or_sections, dim: int, name: str, min_dims: int) -> tuple:
    if input._data.ndim < min_dims:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {min_dims} dimension, but got a tensor "
                           f"with {input._data.ndim} dimensions!")
    if isinstance(indices_or_sections, int) and input._data.shape[dim] % indices_or_sections:
        raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the size of the dimension "
                           f"{input._data.shape[dim]} is not divisible by the split_size {indices_or_sections}!")
    return tensor_split(input, indices_or_sections, dim)


def hsplit(input, indices_or_sections) -> tuple:
    return _split_by(input, indices_or_sections, 0 if input._data.ndim == 1 else 1, "hsplit", 1)


def vsplit(input, indices_or_sections) -> tuple:
    return _split_by(input, indices_or_sections, 0, "vsplit", 2)


def dsplit(input, indices_or_sections) -> tuple:
    return _split_by(input, indices_or_sections, 2, "dsplit", 3)


def split_with_sizes(input, split_sizes, dim: int = 0) -> tuple:
    return split(input, list(split_sizes), dim)


unsafe_split = split
unsafe_split_with_sizes = split_with_sizes


def unsafe_chunk(input, chunks: int, dim: int = 0) -> tuple:
    from engine.ops.shape import chunk

    return chunk(input, chunks, dim)


def _tensors(args) -> list:
    return list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else list(args)


def atleast_3d(*tensors):
    """Views with at least three dims: (n) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    items = _tensors(tensors)
    out = []
    for t in items:
        ndim = t._data.ndim
        shape = t._data.shape
        out.append(reshape(t, (1, 1, 1)) if ndim == 0 else reshape(t, (1, shape[0], 1)) if ndim == 1
                   else reshape(t, (*shape, 1)) if ndim == 2 else t)
    if len(tensors) == 1 and isinstance(tensors[0], Tensor):
        return out[0]
    return tuple(out)


def column_stack(tensors) -> Tensor:
    """Stack 0-d/1-d tensors as columns (and 2-d ones side by side)."""
    return cat([reshape(t, (-1, 1)) if t._data.ndim <= 1 else t for t in tensors], 1)


def row_stack(tensors) -> Tensor:
    """Alias of ``vstack``."""
    from engine.ops.shape import vstack

    return vstack(tensors)


def dstack(tensors) -> Tensor:
    """Stack along the third dim (after ``atleast_3d``)."""
    return cat([atleast_3d(t) for t in tensors], 2)


def ravel(input) -> Tensor:
    return reshape(input, (-1,))


def narrow_copy(input, dim: int, start: int, length: int) -> Tensor:
    return narrow(input, dim, start, length).clone()


def rot90(input, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first towards the second)."""
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input._data.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input._data.ndim}")
    d0, d1 = (normalize_dim(d, input._data.ndim) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, d1), d0, d1)
    if k == 2:
        return flip(input, d0, d1)
    if k == 3:
        return flip(transpose(input, d0, d1), d1)
    return input.clone()


def diagflat(input, offset: int = 0) -> Tensor:
    """A 2-d tensor with the flattened ``input`` on its ``offset`` diagonal."""
    return diag(reshape(input, (-1,)), offset)


def block_diag(*tensors) -> Tensor:
    """The block-diagonal matrix of the given 0/1/2-d tensors."""
    from engine.creation import zeros
    from engine.ops.promotion import result_type

    if not tensors:
        return zeros((1, 0))
    mats = []
    for t in tensors:
        if t._data.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input "
                               f"{len(mats)} has {t._data.ndim} dimensions")
        mats.append(reshape(t, (1, 1)) if t._data.ndim == 0 else reshape(t, (1, -1)) if t._data.ndim == 1 else t)
    dtype = mats[0]._dtype
    for m in mats[1:]:
        dtype = result_type(m, zeros((), dtype=dtype))
    rows = sum(m._data.shape[0] for m in mats)
    cols = sum(m._data.shape[1] for m in mats)
    out = zeros((rows, cols), dtype=dtype, device=mats[0]._device)
    r = c = 0
    for m in mats:
        h, w = m._data.shape
        out = IndexPut.apply(out, m.to(dtype), (slice(r, r + h), slice(c, c + w)))
        r, c = r + h, c + w
    return out


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids of 1-d tensors; ``indexing="ij"`` (the default) or ``"xy"``."""
    items = _tensors(tensors)
    indexing = indexing or "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    for t in items:
        if t._data.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t}")
    vectors = [reshape(t, (-1,)) for t in items]
    swap = indexing == "xy" and len(vectors) >= 2
    if swap:
        vectors[0], vectors[1] = vectors[1], vectors[0]
    shape = tuple(v._data.shape[0] for v in vectors)
    grids = []
    for i, v in enumerate(vectors):
        view = [1] * len(vectors)
        view[i] = -1
        grids.append(reshape(v, tuple(view)).expand(shape))
    if swap:  # the grids keep the swapped (y, x) layout; only their order is restored
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def _embed(input, src, index, name: str, expected: tuple) -> Tensor:
    if tuple(src._data.shape) != expected:
        raise RuntimeError(f"{name}: expected src to have a size equal to the slice of self. src size = "
                           f"{list(src._data.shape)}, slice size = {list(expected)}")
    return IndexPut.apply(input, src.to(input._dtype), index)


def slice_scatter(input, src, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """A copy of ``input`` with ``src`` written into ``input[..., start:end:step, ...]`` (along ``dim``)."""
    dim = normalize_dim(dim, input._data.ndim)
    index = (slice(None),) * dim + (slice(start, end, step),)
    return _embed(input, src, index, "slice_scatter", input._data[index].shape)


def select_scatter(input, src, dim: int, index: int) -> Tensor:
    """A copy of ``input`` with ``src`` written into ``input.select(dim, index)``."""
    dim = normalize_dim(dim, input._data.ndim)
    where = (slice(None),) * dim + (index,)
    return _embed(input, src, where, "select_scatter", input._data[where].shape)


def diagonal_scatter(input, src, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """A copy of ``input`` with ``src`` written into its ``offset`` diagonal over ``dim1``/``dim2``."""
    expected = tuple(diagonal(input.detach(), offset, dim1, dim2)._data.shape)
    if tuple(src._data.shape) != expected:
        raise RuntimeError(f"diagonal_scatter: expected src to have a size equal to the diagonal. src size = "
                           f"{list(src._data.shape)}, diagonal size = {list(expected)}")
    xp = input._device.xp
    ndim = input._data.ndim
    d1, d2 = normalize_dim(dim1, ndim), normalize_dim(dim2, ndim)
    n = expected[-1]
    rows = xp.arange(n) + max(-offset, 0)
    cols = xp.arange(n) + max(offset, 0)
    index = [slice(None)] * ndim
    index[d1], index[d2] = rows, cols
    # NOTE: NumPy puts the advanced (diagonal) dim where the adjacent index pair was, else first.
    position = min(d1, d2) if abs(d1 - d2) == 1 else 0
    return IndexPut.apply(input, src.movedim(-1, position).to(input._dtype), tuple(index))


def unfold(input, dimension: int, size: int, step: int) -> Tensor:
    """Every window of ``size`` elements, ``step`` apart, along ``dimension``, as a new last dim
    (``Tensor.unfold``)."""
    from engine.ops.indexing import index_select

    ndim = input._data.ndim
    dim = normalize_dim(dimension, ndim) if ndim else 0
    length = input._data.shape[dim] if ndim else 1
    if size > length:
        raise RuntimeError(f"maximum size for tensor at dimension {dim} is {length} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if not ndim:
        return reshape(input, (1,))
    xp = input._device.xp
    count = (length - size) // step + 1
    picks = (xp.arange(count)[:, None] * step + xp.arange(size)[None, :]).reshape(-1)
    from engine.creation import as_tensor

    taken = index_select(input, dim, as_tensor(picks, device=input._device))
    shape = list(input._data.shape)
    shape[dim:dim + 1] = [count, size]
    return reshape(taken, tuple(shape)).movedim(dim + 1, -1)

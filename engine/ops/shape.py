"""Shape and layout ops: reshape/view, squeeze/unsqueeze, permute/transpose, expand, repeat, cat,
stack, split/chunk/unbind, narrow/select, flip, roll, tril/triu."""

from __future__ import annotations

import math

from engine.autograd.function import Op
from engine.ops import grad_math as gm
from engine.ops.promotion import cast, check_same_device, result_type
from engine.ops.reduction import normalize_dim, normalize_dims, sum_to
from engine.tensor import Tensor


def shape_args(args) -> tuple:
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])``."""
    if len(args) == 1 and isinstance(args[0], list | tuple):
        args = args[0]
    return tuple(int(a) for a in args)


def keyword_or_args(name: str, args: tuple, value, keyword: str) -> tuple:
    """The sizes given positionally (``f(2, 3)``, ``f((2, 3))``) or as PyTorch's keyword (``f(size=(2, 3))``)."""
    if value is None:
        return args
    if args:
        raise TypeError(f"{name}() got multiple values for argument '{keyword}'")
    return (value,)


def infer_shape(shape: tuple, numel: int) -> tuple:
    """Resolve one -1 entry and check the element count."""
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


class Reshape(Op):
    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x._data.shape
        return x._data.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.input_shape), None


def reshape(input, *args, shape=None) -> Tensor:
    shape = infer_shape(shape_args(keyword_or_args("reshape", args, shape, "shape")), input._data.size)
    if shape == input._data.shape:
        return input if not input._requires_grad else Reshape.apply(input, shape)
    return Reshape.apply(input, shape)


def view(input, *args, size=None, dtype=None) -> Tensor:
    shape = keyword_or_args("view", args, size if dtype is None else dtype, "size" if dtype is None else "dtype")
    if len(shape) == 1 and not isinstance(shape[0], int | list | tuple):
        from engine.dtypes import as_dtype

        target = as_dtype(shape[0])
        if target is input._dtype:
            return input
        raise NotImplementedError("view(dtype) reinterpretation is not supported; use .to(dtype)")
    out = reshape(input, *shape)
    if out._data.size and out is not input and out._base is None and input._data.size:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one "
                           "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    return out


def view_as(input, other) -> Tensor:
    return view(input, other._data.shape)


def reshape_as(input, other) -> Tensor:
    return reshape(input, other._data.shape)


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    ndim = input._data.ndim
    if ndim == 0:
        return reshape(input, 1)
    start, end = normalize_dim(start_dim, ndim), normalize_dim(end_dim, ndim)
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = input._data.shape
    return reshape(input, (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:]))


def unflatten(input, dim: int, sizes) -> Tensor:
    dim = normalize_dim(dim, input._data.ndim)
    shape = input._data.shape
    sizes = infer_shape(tuple(sizes), shape[dim])
    return reshape(input, shape[:dim] + sizes + shape[dim + 1:])


def squeeze(input, dim=None) -> Tensor:
    shape = input._data.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = normalize_dims(dim, input._data.ndim) if input._data.ndim else ()
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    return Reshape.apply(input, new) if new != shape else reshape(input, shape)


def unsqueeze(input, dim: int) -> Tensor:
    ndim = input._data.ndim
    if not -ndim - 1 <= dim <= ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim - 1}, {ndim}], but got {dim})")
    dim = dim % (ndim + 1)
    shape = input._data.shape
    return Reshape.apply(input, (*shape[:dim], 1, *shape[dim:]))


class Permute(Op):
    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x._data.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return gm.permute(g, tuple(inverse)), None


def permute(input, *args, dims=None) -> Tensor:
    dims = shape_args(keyword_or_args("permute", args, dims, "dims"))
    ndim = input._data.ndim
    if len(dims) != ndim:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {ndim} is not equal "
                           f"to len(dims) = {len(dims)}")
    dims = tuple(normalize_dim(d, ndim) for d in dims)
    if len(set(dims)) != ndim:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return Permute.apply(input, dims)


def transpose(input, dim0: int, dim1: int) -> Tensor:
    ndim = input._data.ndim
    if ndim == 0:
        return input
    d0, d1 = normalize_dim(dim0, ndim), normalize_dim(dim1, ndim)
    dims = list(range(ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(input, tuple(dims))


swapaxes = swapdims = transpose


def t(input) -> Tensor:
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input._data.ndim}D")
    return transpose(input, 0, 1) if input._data.ndim == 2 else input


def T(input) -> Tensor:
    ndim = input._data.ndim
    return Permute.apply(input, tuple(range(ndim - 1, -1, -1))) if ndim > 1 else input


def mT(input) -> Tensor:
    if input._data.ndim < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor.")
    return transpose(input, -2, -1)


def movedim(input, source, destination) -> Tensor:
    ndim = input._data.ndim
    source = [normalize_dim(d, ndim) for d in ([source] if isinstance(source, int) else source)]
    destination = [normalize_dim(d, ndim) for d in ([destination] if isinstance(destination, int) else destination)]
    order = [d for d in range(ndim) if d not in source]
    for dst, src in sorted(zip(destination, source, strict=True)):
        order.insert(dst, src)
    return Permute.apply(input, tuple(order))


moveaxis = movedim


class Expand(Op):
    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x._data.shape
        return x._device.xp.broadcast_to(x._data, shape)

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.input_shape), None


def expand(input, *args, size=None) -> Tensor:
    sizes = shape_args(keyword_or_args("expand", args, size, "size"))
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
                           f"number of dimensions in the tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    target = tuple(shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
    for i, s in enumerate(shape):
        if s != 1 and target[lead + i] != s:
            raise RuntimeError(f"The expanded size of the tensor ({target[lead + i]}) must match the existing size "
                               f"({s}) at non-singleton dimension {lead + i}.  Target sizes: {list(sizes)}.  "
                               f"Tensor sizes: {list(shape)}")
    if target == shape:
        return input
    return Expand.apply(input, target)


def expand_as(input, other) -> Tensor:
    return expand(input, other._data.shape)


def broadcast_to(input, shape) -> Tensor:
    return expand(input, tuple(shape))


def broadcast_shapes(*shapes) -> tuple:
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, s in enumerate(shape):
            j = ndim - len(shape) + i
            if s != 1:
                if out[j] not in (1, s):
                    raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape: {shapes}")
                out[j] = s
    return tuple(out)


def broadcast_tensors(*tensors) -> tuple:
    shape = broadcast_shapes(*(t._data.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


class Repeat(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x, repeats):
        ctx.input_shape = x._data.shape
        ctx.repeats = repeats
        data = x._data.reshape((1,) * (len(repeats) - x._data.ndim) + x._data.shape)
        return x._device.xp.tile(data, repeats)

    @staticmethod
    def backward(ctx, g):
        repeats = ctx.repeats
        padded = (1,) * (len(repeats) - len(ctx.input_shape)) + ctx.input_shape
        split = []
        for r, s in zip(repeats, padded, strict=True):
            split += [r, s]
        summed = g.reshape(tuple(split)).sum(tuple(range(0, 2 * len(repeats), 2)))
        return summed.reshape(ctx.input_shape), None


def repeat(input, *args, repeats=None) -> Tensor:
    repeats = shape_args(keyword_or_args("repeat", args, repeats, "repeats"))
    if len(repeats) < input._data.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor")
    return Repeat.apply(input, repeats)


def tile(input, dims) -> Tensor:
    dims = tuple(dims)
    return repeat(input, (1,) * (input._data.ndim - len(dims)) + dims)


class Cat(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, dim, *tensors):
        ctx.dim = dim
        ctx.sizes = [t._data.shape[dim] for t in tensors]
        return tensors[0]._device.xp.concatenate([t._data for t in tensors], axis=dim)

    @staticmethod
    def backward(ctx, g):
        grads = [None]
        offset = 0
        for need, size in zip(ctx.needs_input_grad[1:], ctx.sizes, strict=True):
            grads.append(gm.narrow(g, ctx.dim, offset, size) if need else None)
            offset += size
        return tuple(grads)


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dim (dtypes are promoted, as in PyTorch)."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    # NOTE: PyTorch skips legacy 1-D empty tensors of shape (0,) in cat.
    kept = [t for t in tensors if not (t._data.ndim == 1 and t._data.shape[0] == 0)] or tensors[:1]
    ndim = kept[0]._data.ndim
    if ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    dim = normalize_dim(dim, ndim)
    dtype = result_type(*kept) if len({t._dtype for t in kept}) > 1 else kept[0]._dtype
    for t in kept[1:]:
        check_same_device(kept[0], t)
        if t._data.ndim != ndim or any(a != b for i, (a, b) in enumerate(zip(t._data.shape, kept[0]._data.shape,
                                                                              strict=True)) if i != dim):
            raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size "
                               f"{list(kept[0]._data.shape)} but got size {list(t._data.shape)}")
    return Cat.apply(dim, *[cast(t, dtype) for t in kept])


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tensors[0]._data.shape
    for t in tensors[1:]:
        if t._data.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                               f"and {list(t._data.shape)} at entry {tensors.index(t)}")
    ndim = len(shape) + 1
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})")
    dim = dim % ndim
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def hstack(tensors) -> Tensor:
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0]._data.ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    return cat([t if t._data.ndim >= 2 else reshape(t, 1, -1) for t in tensors], 0)


class Narrow(Op):
    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, dim, start, length):
        ctx.meta = (x._data.shape, dim, start)
        index = [slice(None)] * x._data.ndim
        index[dim] = slice(start, start + length)
        return x._data[tuple(index)]

    @staticmethod
    def backward(ctx, g):
        shape, dim, start = ctx.meta
        index = [slice(None)] * len(shape)
        index[dim] = slice(start, start + gm.shape(g)[dim])
        return gm.embed(g, shape, tuple(index)), None, None, None


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    dim = normalize_dim(dim, input._data.ndim)
    size = input._data.shape[dim]
    if start < 0:
        start += size
    if not (0 <= start <= size and 0 <= length <= size - start):
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return Narrow.apply(input, dim, int(start), int(length))


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``split_size`` (the last may be smaller), or of the given section sizes."""
    dim = normalize_dim(dim, tensor._data.ndim)
    size = tensor._data.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise RuntimeError(f"split_size must be positive, got {step}")
        sections = [min(step, size - s) for s in range(0, size, step)] if size else [0]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size "
                               f"at dimension {dim}), but got split_sizes={sections}")
    out, offset = [], 0
    for length in sections:
        out.append(Narrow.apply(tensor, dim, offset, length))
        offset += length
    return tuple(out)


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0")
    dim = normalize_dim(dim, input._data.ndim)
    size = input._data.shape[dim]
    step = max(-(-size // chunks), 1)
    return split(input, step, dim) if size else split(input, [0], dim)


class Select(Op):
    _view = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.meta = (x._data.shape, dim, index)
        return x._data[(slice(None),) * dim + (index,)]

    @staticmethod
    def backward(ctx, g):
        shape, dim, index = ctx.meta
        return gm.embed(g, shape, (slice(None),) * dim + (index,)), None, None


def select(input, dim: int, index: int) -> Tensor:
    dim = normalize_dim(dim, input._data.ndim)
    size = input._data.shape[dim]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input._data.shape)} at "
                         f"dimension {dim}")
    return Select.apply(input, dim, index % size)


def unbind(input, dim: int = 0) -> tuple:
    dim = normalize_dim(dim, input._data.ndim)
    return tuple(Select.apply(input, dim, i) for i in range(input._data.shape[dim]))


class Flip(Op):
    _view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x._device.xp.flip(x._data, dims) if dims else x._data.view()

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, ctx.dims), None


def flip(input, *args, dims=None) -> Tensor:
    dims = shape_args(keyword_or_args("flip", args, dims, "dims"))
    dims = normalize_dims(dims, input._data.ndim) if input._data.ndim else ()
    return Flip.apply(input, dims)


def fliplr(input) -> Tensor:
    return flip(input, 1)


def flipud(input) -> Tensor:
    return flip(input, 0)


class Roll(Op):
    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.meta = (shifts, dims)
        if dims is None:
            return x._device.xp.roll(x._data.reshape(-1), shifts).reshape(x._data.shape)
        return x._device.xp.roll(x._data, shifts, dims)

    @staticmethod
    def backward(ctx, g):
        shifts, dims = ctx.meta
        negated = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
        return Roll.apply(g, negated, dims), None, None


def roll(input, shifts, dims=None) -> Tensor:
    if dims is None:
        if not isinstance(shifts, int):
            (shifts,) = shifts
        return Roll.apply(input, int(shifts), None)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    dims = tuple(normalize_dim(d, input._data.ndim) for d in dims)
    return Roll.apply(input, shifts, dims)


class Triangle(Op):
    @staticmethod
    def forward(ctx, x, diagonal, upper):
        ctx.meta = (diagonal, upper)
        xp = x._device.xp
        return xp.triu(x._data, diagonal) if upper else xp.tril(x._data, diagonal)

    @staticmethod
    def backward(ctx, g):
        diagonal, upper = ctx.meta
        return Triangle.apply(g, diagonal, upper), None, None


def _check_matrix(input, name: str) -> None:
    if input._data.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")


def tril(input, diagonal: int = 0) -> Tensor:
    _check_matrix(input, "tril")
    return Triangle.apply(input, diagonal, False)


def triu(input, diagonal: int = 0) -> Tensor:
    _check_matrix(input, "triu")
    return Triangle.apply(input, diagonal, True)


def atleast_1d(input) -> Tensor:
    return reshape(input, 1) if input._data.ndim == 0 else input


def atleast_2d(input) -> Tensor:
    return reshape(input, (1,) * (2 - input._data.ndim) + input._data.shape) if input._data.ndim < 2 else input


def repeat_interleave(input, repeats, dim=None) -> Tensor:
    """Repeat each element ``repeats`` times (an int or a 1-D tensor of counts) along ``dim``."""
    from engine.ops.indexing import getitem
    from engine.tensor import wrap

    if dim is None:
        input, dim = reshape(input, -1), 0
    dim = normalize_dim(dim, input._data.ndim)
    xp = input._device.xp
    counts = repeats._data if isinstance(repeats, Tensor) else repeats
    positions = xp.repeat(xp.arange(input._data.shape[dim]), counts)
    index = wrap(positions.astype("int64"), input._device)
    return getitem(input, (slice(None),) * dim + (index,))

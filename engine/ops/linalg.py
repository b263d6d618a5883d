"""Products: matmul (with batch broadcasting), mm, bmm, mv, dot, outer, addmm, einsum."""

from __future__ import annotations

import string

from engine.amp import autocast_state
from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.dtypes import bfloat16, float16, float32
from engine.ops import grad_math as gm
from engine.ops.promotion import binary_operands
from engine.tensor import Tensor, result_like


class Matmul(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        x, y = a._data, b._data
        dtype = a._dtype
        if dtype is float16 or dtype is bfloat16:
            # NOTE: half-precision products accumulate in float32 (NumPy has no half BLAS).
            return (x.astype(float32.np) @ y.astype(float32.np)).astype(dtype.np)
        return x @ y

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a, b = gm.conj(a), gm.conj(b)  # complex: the adjoint uses conjugate transposes
        need_a, need_b = ctx.needs_input_grad
        shape_a, shape_b = gm.shape(a), gm.shape(b)
        grad_a = grad_b = None
        if len(shape_a) == 1 and len(shape_b) == 1:
            grad_a = g * b if need_a else None
            grad_b = g * a if need_b else None
        elif len(shape_a) == 1:  # (n) @ (..., n, m)
            if need_a:
                grad_a = gm.sum_to((g[..., None, :] @ gm.swap_last(b)).squeeze(-2), shape_a)
            if need_b:
                grad_b = gm.sum_to(a[..., :, None] * g[..., None, :], shape_b)
        elif len(shape_b) == 1:  # (..., n, k) @ (k)
            if need_a:
                grad_a = gm.sum_to(g[..., :, None] * b, shape_a)
            if need_b:
                grad_b = gm.sum_to((gm.swap_last(a) @ g[..., :, None]).squeeze(-1), shape_b)
        else:
            if need_a:
                grad_a = gm.sum_to(g @ gm.swap_last(b), shape_a)
            if need_b:
                grad_b = gm.sum_to(gm.swap_last(a) @ g, shape_b)
        return grad_a, grad_b


def matmul(input, other) -> Tensor:
    """Matrix product with NumPy/PyTorch broadcasting rules (1-D operands are vectors)."""
    if input.is_sparse or other.is_sparse:
        from engine.sparse import matmul as sparse_matmul

        return sparse_matmul(input, other)
    if input._data.ndim == 0 or other._data.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{input._data.ndim}D and {other._data.ndim}D")
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        input, other = autocast_state.cast_inputs("matmul", input, other)
    a, b = binary_operands(input, other)
    k_a = a._data.shape[-1]
    k_b = b._data.shape[-2] if b._data.ndim > 1 else b._data.shape[0]
    if k_a != k_b:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({_shape_str(a)} and {_shape_str(b)})")
    if a._dtype.itemsize >= 4 and not ((a._requires_grad or b._requires_grad) and state.enabled):
        return result_like(a._data @ b._data, a)  # NOTE: graph-free fast path
    return Matmul.apply(a, b)


def _shape_str(t: Tensor) -> str:
    return "x".join(str(s) for s in t._data.shape)


def mm(input, mat2) -> Tensor:
    if input.is_sparse:
        from engine.sparse import mm as sparse_mm

        return sparse_mm(input, mat2)
    if input._data.ndim != 2 or mat2._data.ndim != 2:
        raise RuntimeError("mm: both arguments must be 2D matrices")
    return matmul(input, mat2)


def bmm(input, mat2) -> Tensor:
    if input._data.ndim != 3 or mat2._data.ndim != 3:
        raise RuntimeError("batch1 and batch2 must be 3D tensors")
    if input._data.shape[0] != mat2._data.shape[0]:
        raise RuntimeError("batch1 and batch2 must have same number of batches, got "
                           f"{input._data.shape[0]} and {mat2._data.shape[0]}")
    return matmul(input, mat2)


def mv(input, vec) -> Tensor:
    if input._data.ndim != 2 or vec._data.ndim != 1:
        raise RuntimeError("vector + matrix @ vector expected, got " f"{input._data.ndim}, {vec._data.ndim}")
    return matmul(input, vec)


def dot(input, other) -> Tensor:
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input._data.ndim}D and {other._data.ndim}D tensors")
    return matmul(input, other)


inner = vdot = dot


def outer(input, vec2) -> Tensor:
    return input.unsqueeze(1) * vec2.unsqueeze(0)


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    product = mm(mat1, mat2)
    return _scaled_sum(input, product, beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:
    return _scaled_sum(input, mv(mat, vec), beta, alpha)


def _scaled_sum(input, product, beta, alpha):
    product = product if alpha == 1 else product * alpha
    if beta == 0:
        return product
    return (input if beta == 1 else input * beta) + product


# ----- einsum --------------------------------------------------------------------------------------
def _explicit_equation(equation: str, ndims: list) -> tuple:
    """Rewrite an einsum equation with '...' and an implicit output into explicit letters."""
    equation = equation.replace(" ", "")
    lhs, arrow, rhs = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise RuntimeError(f"einsum(): {len(terms)} operand subscripts for {len(ndims)} operands")
    free = [c for c in string.ascii_letters if c not in equation]
    widths = [ndim - (len(term) - 3) for term, ndim in zip(terms, ndims, strict=True) if "..." in term]
    ellipsis = "".join(free[: max(widths, default=0)])
    explicit = []
    for term, ndim in zip(terms, ndims, strict=True):
        if "..." in term:
            width = ndim - (len(term) - 3)
            term = term.replace("...", ellipsis[len(ellipsis) - width:] if width else "")
        if len(term) != ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(term)}) does not match "
                               f"the number of dimensions ({ndim}) for operand {len(explicit)}")
        explicit.append(term)
    if arrow:
        rhs = rhs.replace("...", ellipsis)
    else:
        letters = "".join(explicit)
        rhs = ellipsis + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis))
    return explicit, rhs


class Einsum(Op):
    @staticmethod
    def forward(ctx, terms, rhs, *operands):
        ctx.meta = (terms, rhs)
        ctx.save_for_backward(*operands)
        equation = ",".join(terms) + "->" + rhs
        xp = operands[0]._device.xp
        dtype = operands[0]._dtype
        arrays = [o._data for o in operands]
        if dtype is float16 or dtype is bfloat16:
            arrays = [a.astype(float32.np) for a in arrays]
        out = xp.einsum(equation, *arrays, optimize=len(operands) > 1)
        return out.astype(dtype.np, copy=False)

    @staticmethod
    def backward(ctx, g):
        terms, rhs = ctx.meta
        operands = ctx.saved_tensors
        grads = [None, None]
        for i, (term, operand) in enumerate(zip(terms, operands, strict=True)):
            if not ctx.needs_input_grad[i + 2]:
                grads.append(None)
                continue
            if len(set(term)) != len(term):
                raise NotImplementedError(f"einsum backward with a repeated subscript in '{term}' is not supported")
            others = [t for j, t in enumerate(terms) if j != i]
            available = set(rhs).union(*others)
            kept = "".join(c for c in term if c in available)
            grad = Einsum.apply([rhs, *others], kept, g, *(o for j, o in enumerate(operands) if j != i))
            if kept != term:  # letters only this operand had were summed out: broadcast back
                grad = grad.reshape(tuple(operand._data.shape[k] if c in kept else 1 for k, c in enumerate(term)))
                grad = grad.expand(operand._data.shape)
            grads.append(grad)
        return tuple(grads)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)``."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if len({o._dtype for o in operands}) > 1:
        from engine.ops.promotion import result_type

        dtype = result_type(*operands)
        operands = tuple(o.to(dtype) for o in operands)
    terms, rhs = _explicit_equation(equation, [o._data.ndim for o in operands])
    return Einsum.apply(terms, rhs, *operands)

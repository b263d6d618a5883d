"""grouped_mm: one matmul per group (mixture-of-experts layers), groups either stacked on a leading dim or
cut out of a jagged dim by ``offs`` (the end of each group), as ``torch.nn.functional.grouped_mm``."""

from __future__ import annotations

from engine.creation import zeros
from engine.ops.shape import cat, stack
from engine.tensor import Tensor


def _ends(offs, count: int) -> list[int]:
    if offs is None:
        raise RuntimeError("grouped_mm: offs is required when an operand is 2D")
    if offs.dim() != 1 or offs._dtype.is_floating_point:
        raise RuntimeError("grouped_mm: offs must be a 1D integer tensor")
    ends = [int(v) for v in offs.tolist()]
    if any(b < a for a, b in zip([0, *ends], ends, strict=False)) or (ends and ends[-1] > count):
        raise RuntimeError(f"grouped_mm: offs must be non-decreasing and at most {count}, got {ends}")
    return ends


def grouped_mm(mat_a: Tensor, mat_b: Tensor, *, offs=None, bias=None, out_dtype=None) -> Tensor:
    """2D x 3D: rows of ``mat_a`` cut by ``offs``, group g times ``mat_b[g]`` -> (M, N); 3D x 3D: a batched
    matmul; 3D x 2D: columns of ``mat_b`` cut by ``offs`` -> (M, N_total); 2D x 2D: the shared K dim cut by
    ``offs`` -> (G, M, N). Rows or columns past ``offs[-1]`` come out as zeros."""
    if mat_a.dim() not in (2, 3) or mat_b.dim() not in (2, 3):
        raise RuntimeError(f"grouped_mm: mat_a and mat_b must be 2D or 3D, got {mat_a.dim()}D and {mat_b.dim()}D")
    if mat_a.shape[-1] != mat_b.shape[-2] and not (mat_a.dim() == 2 and mat_b.dim() == 2):
        raise RuntimeError(f"grouped_mm: contraction dims differ: {tuple(mat_a.shape)} and {tuple(mat_b.shape)}")
    if mat_a.dim() == 3 and mat_b.dim() == 3:
        if offs is not None:
            raise RuntimeError("grouped_mm: offs must be None when both operands are 3D")
        out = mat_a @ mat_b
    elif mat_a.dim() == 2 and mat_b.dim() == 3:
        ends = _ends(offs, mat_a.shape[0])
        if len(ends) != mat_b.shape[0]:
            raise RuntimeError(f"grouped_mm: {len(ends)} offsets for {mat_b.shape[0]} groups")
        parts = [mat_a[a:b] @ mat_b[g] for g, (a, b) in enumerate(zip([0, *ends], ends, strict=False))]
        rest = mat_a.shape[0] - (ends[-1] if ends else 0)
        if rest:
            parts.append(zeros(rest, mat_b.shape[-1], dtype=mat_a.dtype, device=mat_a.device))
        out = cat(parts, 0)
    elif mat_a.dim() == 3:
        ends = _ends(offs, mat_b.shape[1])
        if len(ends) != mat_a.shape[0]:
            raise RuntimeError(f"grouped_mm: {len(ends)} offsets for {mat_a.shape[0]} groups")
        parts = [mat_a[g] @ mat_b[:, a:b] for g, (a, b) in enumerate(zip([0, *ends], ends, strict=False))]
        rest = mat_b.shape[1] - (ends[-1] if ends else 0)
        if rest:
            parts.append(zeros(mat_a.shape[1], rest, dtype=mat_a.dtype, device=mat_a.device))
        out = cat(parts, 1)
    else:
        if mat_a.shape[1] != mat_b.shape[0]:
            raise RuntimeError(f"grouped_mm: contraction dims differ: {tuple(mat_a.shape)} and {tuple(mat_b.shape)}")
        ends = _ends(offs, mat_a.shape[1])
        out = stack([mat_a[:, a:b] @ mat_b[a:b] for a, b in zip([0, *ends], ends, strict=False)], 0)
    if bias is not None:
        out = out + bias
    return out if out_dtype is None else out.to(out_dtype)


__all__ = ["grouped_mm"]

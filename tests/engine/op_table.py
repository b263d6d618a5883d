"""The op table: every engine op with sample inputs, checked against PyTorch by test_op_table.py.

Each case's ``fn(lib, *tensors)`` is written once and run twice, with ``lib=engine`` and
``lib=torch`` (the APIs match); ``torch_fn`` covers the few places where they differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

FLOAT_KINDS = ("normal", "positive", "unit", "small")


@dataclass(frozen=True)
class Arg:
    """One input: a shape and how to draw its values."""

    shape: tuple
    kind: str = "normal"  # normal | positive (0.5..2) | unit (-0.9..0.9) | small (-0.5..0.5) | index | perm | bool
    high: int = 0  # index/perm: values in [0, high)
    dim: int = 0  # perm: dim along which each slice is a permutation (for scatter without duplicates)

    @property
    def is_float(self) -> bool:
        return self.kind in FLOAT_KINDS


def F(*shape) -> Arg:
    return Arg(shape)


def P(*shape) -> Arg:
    return Arg(shape, "positive")


def U(*shape) -> Arg:
    return Arg(shape, "unit")


def Sm(*shape) -> Arg:
    return Arg(shape, "small")


def Idx(shape, high: int) -> Arg:
    return Arg(tuple(shape), "index", high)


def Perm(shape, high: int, dim: int = 0) -> Arg:
    return Arg(tuple(shape), "perm", high, dim)


def B(*shape) -> Arg:
    return Arg(shape, "bool")


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable
    inputs: tuple
    torch_fn: Callable | None = None
    differentiable: bool = True
    gradgrad: bool = True  # also check second derivatives (create_graph) with gradgradcheck
    noncontiguous: bool = True
    rtol: float = 1e-5
    atol: float = 1e-6
    tags: tuple = field(default_factory=tuple)


C = Case
S = (3, 4)

OPS: list[Case] = [
    # ----- arithmetic, broadcasting, scalars, 0-d and empty ------------------------------------
    C("add", lambda L, a, b: a + b, (F(*S), F(*S))),
    C("add_broadcast", lambda L, a, b: a + b, (F(3, 1, 4), F(2, 4))),
    C("add_scalar", lambda L, a: a + 2.5, (F(*S),)),
    C("radd_scalar", lambda L, a: 2.5 + a, (F(*S),)),
    C("add_alpha", lambda L, a, b: L.add(a, b, alpha=0.5), (F(*S), F(4))),
    C("add_zero_dim", lambda L, a, b: a + b, (F(), F(*S))),
    C("add_both_zero_dim", lambda L, a, b: a + b, (F(), F())),
    C("add_empty", lambda L, a, b: a + b, (F(0, 4), F(1, 4))),
    C("sub", lambda L, a, b: a - b, (F(*S), F(4))),
    C("rsub_scalar", lambda L, a: 3 - a, (F(*S),)),
    C("mul", lambda L, a, b: a * b, (F(*S), F(*S))),
    C("mul_broadcast", lambda L, a, b: a * b, (F(4, 1), F(1, 5))),
    C("mul_scalar", lambda L, a: a * -1.5, (F(*S),)),
    C("mul_zero_dim", lambda L, a, b: L.mul(a, b), (F(*S), F())),
    C("div", lambda L, a, b: a / b, (F(*S), P(*S))),
    C("div_broadcast", lambda L, a, b: a / b, (F(2, 3, 4), P(3, 1))),
    C("rdiv_scalar", lambda L, a: 2 / a, (P(*S),)),
    C("div_floor", lambda L, a, b: L.div(a, b, rounding_mode="floor"), (F(*S), P(*S)), differentiable=False),
    C("div_trunc", lambda L, a, b: L.div(a, b, rounding_mode="trunc"), (F(*S), P(*S)), differentiable=False),
    C("pow_scalar", lambda L, a: a**2.5, (P(*S),)),
    C("pow_int", lambda L, a: a**3, (F(*S),)),
    C("rpow", lambda L, a: 2**a, (F(*S),)),
    C("pow_tensor", lambda L, a, b: L.pow(a, b), (P(*S), F(4))),
    C("remainder", lambda L, a: L.remainder(a, 0.7), (F(*S),)),
    C("neg", lambda L, a: -a, (F(*S),)),
    C("abs", lambda L, a: L.abs(a), (F(*S),)),
    C("maximum", lambda L, a, b: L.maximum(a, b), (F(*S), F(*S))),
    C("maximum_broadcast", lambda L, a, b: L.maximum(a, b), (F(*S), F(1, 4))),
    C("minimum", lambda L, a, b: L.minimum(a, b), (F(*S), F(*S))),
    C("clamp", lambda L, a: a.clamp(-0.5, 0.5), (F(*S),)),
    C("clamp_min", lambda L, a: L.clamp(a, min=0.1), (F(*S),)),
    C("clamp_tensor_bounds", lambda L, a, lo: L.clamp(a, min=lo), (F(*S), F(4))),
    C("where", lambda L, a, b: L.where(a > 0, a, b), (F(*S), F(*S))),
    C("where_scalar", lambda L, a: L.where(a > 0, a, 0.0), (F(*S),)),
    C("where_broadcast", lambda L, a, b: L.where(b > 0, a, b), (F(3, 1), F(4))),
    C("lerp", lambda L, a, b: L.lerp(a, b, 0.3), (F(*S), F(*S))),
    C("addcmul", lambda L, a, b, c: L.addcmul(a, b, c, value=0.5), (F(*S), F(*S), F(*S))),
    C("addcdiv", lambda L, a, b, c: L.addcdiv(a, b, c, value=2.0), (F(*S), F(*S), P(*S))),
    # ----- unary ---------------------------------------------------------------------------------
    C("exp", lambda L, a: L.exp(a), (F(*S),)),
    C("exp_method", lambda L, a: a.exp(), (F(2, 3, 2),)),
    C("log", lambda L, a: L.log(a), (P(*S),)),
    C("log2", lambda L, a: L.log2(a), (P(*S),)),
    C("log10", lambda L, a: L.log10(a), (P(*S),)),
    C("log1p", lambda L, a: L.log1p(a), (P(*S),)),
    C("expm1", lambda L, a: L.expm1(a), (F(*S),)),
    C("sqrt", lambda L, a: L.sqrt(a), (P(*S),)),
    C("rsqrt", lambda L, a: L.rsqrt(a), (P(*S),)),
    C("reciprocal", lambda L, a: L.reciprocal(a), (P(*S),)),
    C("square", lambda L, a: L.square(a), (F(*S),)),
    C("sin", lambda L, a: L.sin(a), (F(*S),)),
    C("cos", lambda L, a: L.cos(a), (F(*S),)),
    C("tan", lambda L, a: L.tan(a), (U(*S),)),
    C("atan", lambda L, a: L.atan(a), (F(*S),)),
    C("tanh", lambda L, a: L.tanh(a), (F(*S),)),
    C("sigmoid", lambda L, a: L.sigmoid(a), (F(*S),)),
    C("sigmoid_zero_dim", lambda L, a: a.sigmoid(), (F(),)),
    C("erf", lambda L, a: L.erf(a * 2), (F(4, 5),)),
    C("sign", lambda L, a: L.sign(a), (F(*S),)),
    C("floor", lambda L, a: L.floor(a * 3), (F(*S),)),
    C("ceil", lambda L, a: L.ceil(a * 3), (F(*S),)),
    C("round", lambda L, a: L.round(a * 3), (F(*S),)),
    C("trunc", lambda L, a: L.trunc(a * 3), (F(*S),)),
    # ----- activations -----------------------------------------------------------------------------
    C("relu", lambda L, a: L.relu(a), (F(*S),)),
    C("relu_method", lambda L, a: a.relu(), (F(5),)),
    C("leaky_relu", lambda L, a: L.leaky_relu(a, 0.1), (F(*S),),
      torch_fn=lambda T, a: T.nn.functional.leaky_relu(a, 0.1)),
    C("elu", lambda L, a: L.elu(a), (F(*S),), torch_fn=lambda T, a: T.nn.functional.elu(a)),
    C("gelu", lambda L, a: L.gelu(a), (F(*S),), torch_fn=lambda T, a: T.nn.functional.gelu(a)),
    C("gelu_tanh", lambda L, a: L.gelu(a, approximate="tanh"), (F(*S),),
      torch_fn=lambda T, a: T.nn.functional.gelu(a, approximate="tanh")),
    C("silu", lambda L, a: L.silu(a), (F(*S),), torch_fn=lambda T, a: T.nn.functional.silu(a)),
    C("softplus", lambda L, a: L.softplus(a * 10, beta=0.5), (F(*S),),
      torch_fn=lambda T, a: T.nn.functional.softplus(a * 10, beta=0.5)),
    C("softmax_last", lambda L, a: L.softmax(a, dim=-1), (F(*S),)),
    C("softmax_dim0", lambda L, a: a.softmax(0), (F(3, 4, 2),)),
    C("softmax_large_logits", lambda L, a: L.softmax(a * 1000, dim=1), (F(*S),), gradgrad=False),
    C("log_softmax", lambda L, a: L.log_softmax(a, dim=1), (F(*S),)),
    C("log_softmax_large_logits", lambda L, a: L.log_softmax(a * 1000, dim=1), (F(*S),), gradgrad=False,
      rtol=1e-4),
    C("logsumexp", lambda L, a: L.logsumexp(a, dim=1), (F(*S),)),
    C("logsumexp_keepdim", lambda L, a: L.logsumexp(a, dim=(0, 2), keepdim=True), (F(2, 3, 4),)),
    # ----- reductions ------------------------------------------------------------------------------
    C("sum", lambda L, a: a.sum(), (F(*S),)),
    C("sum_dim", lambda L, a: L.sum(a, dim=1), (F(*S),)),
    C("sum_dims_keepdim", lambda L, a: a.sum(dim=(0, 2), keepdim=True), (F(2, 3, 4),)),
    C("sum_negative_dim", lambda L, a: a.sum(-1), (F(2, 3, 4),)),
    C("sum_empty_dim", lambda L, a: a.sum(0), (F(0, 3),)),
    C("sum_zero_dim", lambda L, a: a.sum(), (F(),)),
    C("mean", lambda L, a: a.mean(), (F(*S),)),
    C("mean_dim_keepdim", lambda L, a: L.mean(a, 1, keepdim=True), (F(*S),)),
    C("var", lambda L, a: a.var(), (F(*S),)),
    C("var_dim_correction0", lambda L, a: L.var(a, dim=1, correction=0), (F(*S),)),
    C("std_dim", lambda L, a: a.std(dim=0), (F(*S),)),
    C("std_unbiased_false", lambda L, a: L.std(a, 1, unbiased=False, keepdim=True), (F(*S),)),
    C("prod", lambda L, a: a.prod(), (U(2, 3),)),
    C("prod_dim", lambda L, a: L.prod(a, 1), (U(*S),)),
    C("max", lambda L, a: a.max(), (F(*S),)),
    C("max_dim", lambda L, a: tuple(L.max(a, dim=1)), (F(*S),)),
    C("max_dim_keepdim", lambda L, a: tuple(a.max(0, keepdim=True)), (F(*S),)),
    C("min_dim", lambda L, a: tuple(a.min(dim=-1)), (F(2, 3, 4),)),
    C("max_binary", lambda L, a, b: L.max(a, b), (F(*S), F(*S))),
    C("amax", lambda L, a: L.amax(a, dim=(0, 2)), (F(2, 3, 4),)),
    C("amin", lambda L, a: a.amin(1, keepdim=True), (F(*S),)),
    C("argmax", lambda L, a: a.argmax(), (F(*S),), differentiable=False),
    C("argmax_dim", lambda L, a: L.argmax(a, dim=1, keepdim=True), (F(*S),), differentiable=False),
    C("argmin_dim", lambda L, a: a.argmin(0), (F(*S),), differentiable=False),
    C("norm", lambda L, a: a.norm(), (F(*S),)),
    C("norm_p1_dim", lambda L, a: L.norm(a, p=1, dim=1), (F(*S),)),
    C("norm_p3", lambda L, a: L.norm(a, p=3), (F(*S),)),
    C("norm_inf_dim", lambda L, a: L.norm(a, p=float("inf"), dim=0), (F(*S),)),
    C("cumsum", lambda L, a: a.cumsum(1), (F(*S),)),
    C("cumsum_dim0", lambda L, a: L.cumsum(a, dim=0), (F(3, 2, 2),)),
    C("cumprod", lambda L, a: L.cumprod(a, dim=1), (P(*S),)),
    C("all_dim", lambda L, a: (a > 0).all(dim=1), (F(*S),), differentiable=False),
    C("any", lambda L, a: L.any(a > 1), (F(*S),), differentiable=False),
    C("count_nonzero", lambda L, a: L.count_nonzero(a > 0, dim=0), (F(*S),), differentiable=False),
    # ----- linear algebra --------------------------------------------------------------------------
    C("matmul", lambda L, a, b: a @ b, (F(3, 4), F(4, 5))),
    C("matmul_batched_broadcast", lambda L, a, b: L.matmul(a, b), (F(2, 1, 3, 4), F(3, 4, 2))),
    C("matmul_vector_vector", lambda L, a, b: a @ b, (F(4), F(4))),
    C("matmul_vector_matrix", lambda L, a, b: a @ b, (F(4), F(2, 4, 3))),
    C("matmul_matrix_vector", lambda L, a, b: a @ b, (F(2, 3, 4), F(4))),
    C("matmul_empty_inner", lambda L, a, b: a @ b, (F(3, 0), F(0, 4))),
    C("mm", lambda L, a, b: L.mm(a, b), (F(2, 3), F(3, 2))),
    C("bmm", lambda L, a, b: L.bmm(a, b), (F(2, 3, 4), F(2, 4, 2))),
    C("mv", lambda L, a, b: L.mv(a, b), (F(3, 4), F(4))),
    C("dot", lambda L, a, b: L.dot(a, b), (F(5), F(5))),
    C("outer", lambda L, a, b: L.outer(a, b), (F(3), F(4))),
    C("addmm", lambda L, c, a, b: L.addmm(c, a, b, beta=0.5, alpha=2.0), (F(3), F(2, 4), F(4, 3))),
    C("einsum_matmul", lambda L, a, b: L.einsum("ij,jk->ik", a, b), (F(3, 4), F(4, 2))),
    C("einsum_batched", lambda L, a, b: L.einsum("bij,bjk->bik", a, b), (F(2, 3, 4), F(2, 4, 2))),
    C("einsum_implicit_sum", lambda L, a: L.einsum("ij->", a), (F(*S),)),
    C("einsum_outer", lambda L, a, b: L.einsum("i,j", a, b), (F(3), F(4))),
    C("einsum_ellipsis", lambda L, a, b: L.einsum("...ij,...jk->...ik", a, b), (F(2, 3, 4), F(2, 4, 3))),
    C("einsum_reduce_only_operand", lambda L, a, b: L.einsum("ij,k->ik", a, b), (F(3, 4), F(5))),
    # ----- shape -----------------------------------------------------------------------------------
    C("reshape", lambda L, a: a.reshape(2, -1), (F(3, 4),)),
    C("reshape_tuple", lambda L, a: L.reshape(a, (4, 3)), (F(3, 4),)),
    C("view", lambda L, a: a.view(6, 2), (F(3, 4),), noncontiguous=False),
    C("flatten", lambda L, a: a.flatten(), (F(2, 3, 4),)),
    C("flatten_start", lambda L, a: L.flatten(a, 1), (F(2, 3, 4),)),
    C("unflatten", lambda L, a: a.unflatten(1, (2, 2)), (F(3, 4),)),
    C("squeeze", lambda L, a: a.squeeze(), (F(3, 1, 4, 1),)),
    C("squeeze_dim", lambda L, a: a.squeeze(1), (F(3, 1, 4),)),
    C("unsqueeze", lambda L, a: a.unsqueeze(-1), (F(*S),)),
    C("permute", lambda L, a: a.permute(2, 0, 1), (F(2, 3, 4),)),
    C("transpose", lambda L, a: a.transpose(0, 2), (F(2, 3, 4),)),
    C("T", lambda L, a: a.T, (F(*S),)),
    C("mT", lambda L, a: a.mT, (F(2, 3, 4),)),
    C("expand", lambda L, a: a.expand(2, 3, 4), (F(3, 1),)),
    C("expand_keep", lambda L, a: a.expand(-1, 4), (F(3, 1),)),
    C("repeat", lambda L, a: a.repeat(2, 1, 3), (F(3, 2),)),
    C("tile", lambda L, a: L.tile(a, (2,)), (F(3, 2),)),
    C("repeat_interleave", lambda L, a: L.repeat_interleave(a, 2, dim=0), (F(3, 2),)),
    C("contiguous", lambda L, a: a.contiguous(), (F(*S),)),
    C("cat", lambda L, a, b: L.cat([a, b]), (F(2, 4), F(3, 4))),
    C("cat_dim1_three", lambda L, a, b, c: L.cat((a, b, c), dim=1), (F(3, 1), F(3, 2), F(3, 3))),
    C("cat_with_empty", lambda L, a, b: L.cat([a, b], 0), (F(0, 4), F(2, 4))),
    C("stack", lambda L, a, b: L.stack([a, b], dim=1), (F(*S), F(*S))),
    C("split", lambda L, a: a.split(2, dim=1), (F(3, 5),)),
    C("split_sections", lambda L, a: L.split(a, [1, 3], dim=1), (F(3, 4),)),
    C("chunk", lambda L, a: a.chunk(3, 0), (F(5, 2),)),
    C("unbind", lambda L, a: a.unbind(1), (F(*S),)),
    C("narrow", lambda L, a: a.narrow(1, 1, 2), (F(*S),)),
    C("select", lambda L, a: a.select(0, -1), (F(*S),)),
    C("flip", lambda L, a: a.flip(0, 1), (F(*S),)),
    C("roll", lambda L, a: L.roll(a, shifts=(1, -2), dims=(0, 1)), (F(*S),)),
    C("roll_flat", lambda L, a: a.roll(3), (F(*S),)),
    C("tril", lambda L, a: L.tril(a), (F(4, 4),)),
    C("triu_offset", lambda L, a: a.triu(1), (F(2, 3, 4),)),
    C("movedim", lambda L, a: L.movedim(a, 0, -1), (F(2, 3, 4),)),
    # ----- indexing --------------------------------------------------------------------------------
    C("index_slices", lambda L, a: a[1:, ::2], (F(4, 5),)),
    C("index_negative", lambda L, a: a[-1, -2:], (F(4, 5),)),
    C("index_ellipsis", lambda L, a: a[..., 1], (F(2, 3, 4),)),
    C("index_none", lambda L, a: a[:, None, 1:3], (F(4, 5),)),
    C("index_int_list_repeated", lambda L, a: a[[0, 2, 0]], (F(4, 5),)),
    C("index_int_tensor", lambda L, a, i: a[i], (F(4, 5), Idx((2, 3), 4))),
    C("index_two_tensors", lambda L, a, i, j: a[i, j], (F(4, 5), Idx((6,), 4), Idx((6,), 5))),
    C("index_bool_mask", lambda L, a: a[a > 0], (F(4, 5),)),
    C("index_mixed", lambda L, a: a[[0, 1], 1:], (F(4, 5),)),
    C("index_tensor_then_slice", lambda L, a, i: a[:, i], (F(4, 5), Idx((3,), 5))),
    C("gather", lambda L, a, i: L.gather(a, 1, i), (F(3, 4), Idx((3, 6), 4))),
    C("gather_dim0_smaller", lambda L, a, i: a.gather(0, i), (F(3, 4), Idx((2, 3), 3))),
    C("scatter", lambda L, a, i, s: L.scatter(a, 1, i, s), (F(3, 4), Perm((3, 4), 4, 1), F(3, 4))),
    C("scatter_value", lambda L, a, i: a.scatter(0, i, 2.5), (F(3, 4), Perm((3, 4), 3, 0))),
    C("scatter_add", lambda L, a, i, s: L.scatter_add(a, 0, i, s), (F(3, 4), Idx((5, 4), 3), F(5, 4))),
    C("index_select", lambda L, a, i: L.index_select(a, 1, i), (F(3, 4), Idx((5,), 4))),
    C("masked_fill", lambda L, a: a.masked_fill(a > 0, -1.0), (F(*S),)),
    C("masked_select", lambda L, a, m: L.masked_select(a, m), (F(*S), B(4))),
    C("take_along_dim", lambda L, a, i: L.take_along_dim(a, i, dim=1), (F(3, 4), Idx((3, 2), 4))),
    # ----- sorting ----------------------------------------------------------------------------------
    C("sort", lambda L, a: tuple(a.sort(dim=1)), (F(*S),)),
    C("sort_descending", lambda L, a: tuple(L.sort(a, 0, descending=True)), (F(*S),)),
    C("argsort", lambda L, a: a.argsort(dim=-1), (F(*S),), differentiable=False),
    C("topk", lambda L, a: tuple(L.topk(a, 2, dim=1)), (F(*S),)),
    C("topk_smallest", lambda L, a: tuple(a.topk(3, dim=0, largest=False)), (F(4, 5),)),
    # ----- comparisons and logic (no gradient) ------------------------------------------------------
    C("eq", lambda L, a, b: a == b.round(), (F(*S), F(*S)), differentiable=False),
    C("lt_scalar", lambda L, a: a < 0.2, (F(*S),), differentiable=False),
    C("ge_broadcast", lambda L, a, b: a >= b, (F(*S), F(4)), differentiable=False),
    C("logical_and", lambda L, a, b: L.logical_and(a > 0, b > 0), (F(*S), F(*S)), differentiable=False),
    C("logical_or_operator", lambda L, a, b: (a > 0) | (b > 0), (F(*S), F(*S)), differentiable=False),
    C("logical_not_operator", lambda L, a: ~(a > 0), (F(*S),), differentiable=False),
    C("isclose", lambda L, a, b: L.isclose(a, a + b * 1e-7), (F(*S), F(*S)), differentiable=False),
    # ----- conversions -------------------------------------------------------------------------------
    C("to_float64", lambda L, a: a.to(L.float64) * 2, (F(*S),)),
    C("clone", lambda L, a: a.clone(), (F(*S),)),
    C("mixed_dtype_promotion", lambda L, a, b: a + b.double(), (F(*S), F()), gradgrad=False),
]

from op_table_breadth import BREADTH_OPS  # noqa: E402 - its cases use the helpers above

OPS += BREADTH_OPS

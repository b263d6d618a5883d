"""Op-table cases for the breadth ops (trig, pointwise, statistics, index updates, layout, products).

Appended to ``op_table.OPS``, so test_op_table.py sweeps them like every other op: forward and
gradients against PyTorch on contiguous and non-contiguous inputs, float64 gradcheck/gradgradcheck,
and the other float dtypes.
"""

from __future__ import annotations

import warnings

from op_table import B, C, F, Idx, P, Perm, U

S = (3, 4)


def _index_reduce_mean(L, a, i, s):
    return a.index_reduce(0, i.reshape(-1), s, "mean")


def _quietly(fn):
    """``fn`` with PyTorch's beta-API warning silenced (pytest turns warnings into errors)."""

    def run(*args):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "index_reduce", UserWarning)
            return fn(*args)

    return run

NO_HALF = "no_half"  # PyTorch refuses float16/bfloat16 here: the engine must refuse them too

BREADTH_OPS = [
    # ----- inverse and hyperbolic trig, atan2, hypot, degrees -------------------------------------
    C("asin", lambda L, a: L.asin(a), (U(*S),)),
    C("arccos_method", lambda L, a: a.arccos(), (U(*S),)),
    C("sinh", lambda L, a: L.sinh(a), (F(*S),)),
    C("cosh_method", lambda L, a: a.cosh(), (F(*S),)),
    C("asinh", lambda L, a: L.asinh(a), (F(*S),)),
    C("acosh", lambda L, a: L.acosh(a + 1.5), (P(*S),)),
    C("atanh", lambda L, a: a.atanh(), (U(*S),)),
    C("atan2", lambda L, a, b: L.atan2(a, b), (F(*S), F(4))),
    C("arctan2_method", lambda L, a, b: a.arctan2(b), (F(*S), F(*S))),
    C("hypot", lambda L, a, b: L.hypot(a, b), (F(*S), F(*S))),
    C("deg2rad", lambda L, a: L.deg2rad(a), (F(*S),)),
    C("rad2deg_method", lambda L, a: a.rad2deg(), (F(*S),)),
    # ----- more pointwise ----------------------------------------------------------------------------
    C("copysign", lambda L, a, b: L.copysign(a, b.detach()), (F(*S), F(4))),
    C("logaddexp", lambda L, a, b: L.logaddexp(a, b), (F(*S), F(*S))),
    C("logaddexp_broadcast_large", lambda L, a, b: L.logaddexp(a * 40, b), (F(*S), F(4))),
    C("logaddexp2", lambda L, a, b: a.logaddexp2(b), (F(*S), F(*S))),
    C("ldexp", lambda L, a, i: L.ldexp(a, i), (F(*S), Idx(S, 4))),
    C("heaviside", lambda L, a, b: L.heaviside(a.round(), b), (F(*S), F(4)), differentiable=False),
    C("erfc", lambda L, a: L.erfc(a), (F(*S),)),
    C("exp2_method", lambda L, a: a.exp2(), (F(*S),)),
    C("logit", lambda L, a: L.logit(a * 0.5 + 0.5), (U(*S),)),
    C("xlogy", lambda L, a, b: L.xlogy(a, b), (F(*S), P(*S))),
    C("lgamma_method", lambda L, a: a.lgamma(), (P(*S),), rtol=1e-4),
    C("digamma", lambda L, a: L.digamma(a), (P(*S),), rtol=1e-4, gradgrad=False),
    C("sinc", lambda L, a: L.sinc(a), (F(*S),)),
    # ----- reductions, scans, order statistics ------------------------------------------------------
    C("nansum", lambda L, a: L.nansum(a.masked_fill(a > 1, float("nan")), 1), (F(*S),)),
    C("nanmean_all", lambda L, a: a.masked_fill(a > 1, float("nan")).nanmean(), (F(*S),)),
    C("median_all", lambda L, a: L.median(a), (F(3, 5),)),
    C("median_dim", lambda L, a: tuple(a.median(1)), (F(3, 5),)),
    C("median_dim_keepdim", lambda L, a: tuple(L.median(a, 0, keepdim=True)), (F(4, 3),)),
    C("nanmedian_dim", lambda L, a: tuple(L.nanmedian(a.masked_fill(a > 1, float("nan")), 1)), (F(3, 6),)),
    C("quantile_scalar", lambda L, a: L.quantile(a, 0.3, dim=1), (F(3, 5),), tags=(NO_HALF,)),
    C("quantile_vector", lambda L, a: L.quantile(a, L.tensor([0.25, 0.8], dtype=a.dtype, device=a.device), dim=0, keepdim=True),
      (F(4, 3),), tags=(NO_HALF,)),
    C("quantile_all_midpoint", lambda L, a: a.quantile(0.5, interpolation="midpoint"), (F(3, 4),), tags=(NO_HALF,)),
    C("quantile_nearest_all_keepdim", lambda L, a: L.quantile(a, 0.4, keepdim=True, interpolation="nearest"),
      (F(3, 4),), tags=(NO_HALF,)),
    C("nanquantile", lambda L, a: L.nanquantile(a.masked_fill(a > 1, float("nan")), 0.7, dim=1), (F(3, 6),),
      tags=(NO_HALF,)),
    C("mode", lambda L, a: tuple(L.mode((a * 2).round(), 1)), (F(3, 7),), differentiable=False),
    C("aminmax", lambda L, a: tuple(L.aminmax(a, dim=1)), (F(*S),), gradgrad=False),
    C("cummax", lambda L, a: tuple(L.cummax(a, 1)), (F(3, 6),)),
    C("cummin_method", lambda L, a: tuple(a.cummin(0)), (F(5, 3),)),
    # NOTE: second derivatives of logcumsumexp do not match yet (first derivatives do): gradgrad off
    C("logcumsumexp", lambda L, a: L.logcumsumexp(a, 1), (F(3, 6),), gradgrad=False),
    C("diff", lambda L, a: L.diff(a, dim=1), (F(3, 5),)),
    C("diff_twice_prepend", lambda L, a, b: L.diff(a, n=2, dim=0, prepend=b), (F(4, 3), F(2, 3))),
    C("trace", lambda L, a: L.trace(a), (F(4, 4),)),
    C("dist", lambda L, a, b: L.dist(a, b, 3), (F(*S), F(*S))),
    C("cov", lambda L, a: L.cov(a), (F(3, 6),)),
    C("cov_weights", lambda L, a: L.cov(a, fweights=L.tensor([1, 2, 1, 3, 1, 1], device=a.device),
                                         aweights=L.tensor([0.5, 1.0, 2.0, 0.3, 1.5, 1.0], dtype=a.dtype, device=a.device)),
      (F(3, 6),)),
    C("corrcoef", lambda L, a: L.corrcoef(a), (F(3, 6),), rtol=1e-4),
    C("trapezoid", lambda L, a: L.trapezoid(a, dx=0.5), (F(3, 5),)),
    C("trapezoid_x", lambda L, a: L.trapezoid(a, L.tensor([0.0, 0.5, 1.5, 1.75, 3.0], dtype=a.dtype, device=a.device)),
      (F(3, 5),)),
    C("cumulative_trapezoid", lambda L, a: L.cumulative_trapezoid(a, dim=0), (F(4, 3),)),
    C("renorm", lambda L, a: L.renorm(a, 2, 0, 1.0), (F(4, 3),)),
    # ----- index updates ------------------------------------------------------------------------------
    C("index_add", lambda L, a, i, s: L.index_add(a, 0, i.reshape(-1), s, alpha=2.0), (F(4, 3), Idx((5, 1), 4),
                                                                                        F(5, 3))),
    C("index_add_method_dim1", lambda L, a, i, s: a.index_add(1, i.reshape(-1), s), (F(3, 4), Idx((2, 1), 4),
                                                                                      F(3, 2))),
    C("index_copy", lambda L, a, i, s: L.index_copy(a, 0, i.reshape(-1), s), (F(5, 3), Perm((3, 1), 5), F(3, 3))),
    C("index_fill", lambda L, a, i: a.index_fill(1, i.reshape(-1), -2.0), (F(3, 5), Idx((2, 1), 5))),
    C("index_put", lambda L, a, i, v: L.index_put(a, (i.reshape(-1),), v), (F(5, 3), Perm((2, 1), 5), F(3))),
    C("index_put_accumulate", lambda L, a, i, v: a.index_put((i.reshape(-1),), v, accumulate=True),
      (F(5, 3), Idx((4, 1), 5), F(4, 3))),
    C("masked_scatter", lambda L, a, m, s: L.masked_scatter(a, m, s), (F(*S), B(4), F(4, 4))),
    C("take", lambda L, a, i: L.take(a, i), (F(*S), Idx((2, 3), 12))),
    C("put", lambda L, a, i, s: a.put(i.reshape(-1), s), (F(*S), Perm((5, 1), 12), F(5))),
    C("scatter_reduce_sum", lambda L, a, i, s: L.scatter_reduce(a, 0, i, s, "sum"), (F(3, 4), Idx((5, 4), 3),
                                                                                      F(5, 4))),
    C("scatter_reduce_mean_exclude", lambda L, a, i, s: a.scatter_reduce(1, i, s, "mean", include_self=False),
      (F(3, 4), Idx((3, 6), 4), F(3, 6))),
    C("scatter_reduce_amax", lambda L, a, i, s: L.scatter_reduce(a, 0, i, s, "amax"), (F(3, 4), Idx((5, 4), 3),
                                                                                       F(5, 4))),
    C("scatter_reduce_amin_exclude", lambda L, a, i, s: L.scatter_reduce(a, 0, i, s, "amin", include_self=False),
      (F(3, 4), Idx((5, 4), 3), F(5, 4))),
    C("scatter_reduce_prod", lambda L, a, i, s: L.scatter_reduce(a, 0, i, s, "prod"), (P(3, 4), Idx((5, 4), 3),
                                                                                       P(5, 4)), gradgrad=False),
    C("index_reduce_mean", _index_reduce_mean, (F(4, 3), Idx((5, 1), 4), F(5, 3)), torch_fn=_quietly(_index_reduce_mean)),
    # ----- layout -----------------------------------------------------------------------------------
    C("tensor_split_sections", lambda L, a: L.tensor_split(a, 3, dim=1), (F(3, 7),)),
    C("tensor_split_indices", lambda L, a: a.tensor_split([1, 4], dim=1), (F(3, 7),)),
    C("hsplit", lambda L, a: L.hsplit(a, 2), (F(3, 4),)),
    C("vsplit_indices", lambda L, a: L.vsplit(a, [1]), (F(3, 4),)),
    C("dsplit", lambda L, a: L.dsplit(a, 2), (F(2, 3, 4),)),
    C("column_stack", lambda L, a, b: L.column_stack([a, b]), (F(3), F(3, 2))),
    C("row_stack", lambda L, a, b: L.row_stack((a, b)), (F(4), F(2, 4))),
    C("dstack", lambda L, a, b: L.dstack([a, b]), (F(3, 2), F(3, 2))),
    C("atleast_3d", lambda L, a: L.atleast_3d(a), (F(3, 2),)),
    C("ravel", lambda L, a: a.ravel(), (F(*S),)),
    C("narrow_copy", lambda L, a: L.narrow_copy(a, 1, 1, 2), (F(*S),)),
    C("rot90", lambda L, a: L.rot90(a, 1, [0, 1]), (F(*S),)),
    C("rot90_k3", lambda L, a: a.rot90(3, [1, 2]), (F(2, 3, 4),)),
    C("rot90_neg2", lambda L, a: L.rot90(a, -2), (F(*S),)),
    C("diagflat", lambda L, a: L.diagflat(a, 1), (F(2, 2),)),
    C("block_diag", lambda L, a, b, c: L.block_diag(a, b, c), (F(2, 3), F(3), F())),
    C("meshgrid_xy", lambda L, a, b: L.meshgrid(a, b, indexing="xy"), (F(3), F(4))),
    C("slice_scatter", lambda L, a, s: L.slice_scatter(a, s, 1, 0, 4, 2), (F(3, 5), F(3, 2))),
    C("select_scatter", lambda L, a, s: L.select_scatter(a, s, 0, 1), (F(3, 5), F(5))),
    C("diagonal_scatter", lambda L, a, s: L.diagonal_scatter(a, s, 1), (F(3, 4), F(3))),
    C("diagonal_scatter_3d", lambda L, a, s: L.diagonal_scatter(a, s, 0, 0, 2), (F(3, 2, 3), F(2, 3))),
    C("unfold_method", lambda L, a: a.unfold(1, 3, 2), (F(2, 7),)),
    # ----- products ---------------------------------------------------------------------------------
    C("kron", lambda L, a, b: L.kron(a, b), (F(2, 3), F(3, 2))),
    # NOTE: torch's own kron fails on a non-contiguous input of lower rank, hence contiguous only
    C("kron_ranks", lambda L, a, b: a.kron(b), (F(3), F(2, 2)), noncontiguous=False),
    C("tensordot_int", lambda L, a, b: L.tensordot(a, b, 2), (F(2, 3, 4), F(3, 4, 2))),
    C("tensordot_pairs", lambda L, a, b: L.tensordot(a, b, ([0, 2], [2, 0])), (F(2, 3, 4), F(4, 5, 2))),
    C("vdot", lambda L, a, b: L.vdot(a, b), (F(5), F(5))),
    C("cartesian_prod", lambda L, a, b: L.cartesian_prod(a, b), (F(3), F(2))),
    C("combinations", lambda L, a: L.combinations(a, 2), (F(4),)),
    C("combinations_replacement", lambda L, a: L.combinations(a, 3, with_replacement=True), (F(3),)),
    C("addr", lambda L, a, u, v: L.addr(a, u, v, beta=0.5, alpha=2.0), (F(3, 4), F(3), F(4))),
    C("addbmm", lambda L, a, x, y: L.addbmm(a, x, y), (F(3, 4), F(2, 3, 5), F(2, 5, 4))),
    C("cdist", lambda L, a, b: L.cdist(a, b), (F(4, 3), F(5, 3)), tags=(NO_HALF,)),
    C("cdist_p1", lambda L, a, b: L.cdist(a, b, p=1.0), (F(2, 4, 3), F(2, 5, 3)), gradgrad=False, tags=(NO_HALF,)),
    # ----- torch-level spellings of nn.functional -----------------------------------------------------
    C("torch_layer_norm", lambda L, a, w: L.layer_norm(a, (4,), w, None, 1e-5), (F(*S), F(4))),
    C("torch_embedding", lambda L, w, i: L.embedding(w, i), (F(5, 3), Idx((2, 4), 5)), gradgrad=False),
    C("torch_kl_div_sum", lambda L, a, b: L.kl_div(a, b.softmax(-1), 2), (F(*S), F(*S))),
    C("torch_bce_logits", lambda L, a, t: L.binary_cross_entropy_with_logits(a, t * 0.5 + 0.5, None, None, 1),
      (F(*S), U(*S))),
    C("torch_constant_pad", lambda L, a: L.constant_pad_nd(a, (1, 2), 0.5), (F(*S),)),
    C("torch_conv1d", lambda L, a, w: L.conv1d(a, w, None, 1, 1), (F(2, 3, 6), F(4, 3, 3)), gradgrad=False),
    C("torch_batch_norm_eval", lambda L, a, w: L.batch_norm(a, w, None, L.zeros(3, dtype=a.dtype, device=a.device),
                                                            L.ones(3, dtype=a.dtype, device=a.device), False, 0.1, 1e-5, True),
      (F(2, 3, 4), F(3))),
]

"""The breadth ops that the op table cannot sweep (integer results, counting, factories, in-place forms,
random fills, dtype helpers), each against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from torch_oracle import require_torch

import engine

torch = require_torch()


def _same(ours, theirs, exact: bool = False) -> None:
    if isinstance(theirs, tuple | list):
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs, strict=True):
            _same(o, t, exact)
        return
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape), (tuple(ours.shape), tuple(theirs.shape))
    if exact and not theirs.is_floating_point():
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    else:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def _both(fn, *arrays, **kwargs):
    return (fn(engine, *[engine.tensor(a) for a in arrays], **kwargs),
            fn(torch, *[torch.tensor(a) for a in arrays], **kwargs))


RNG = np.random.default_rng(0)
SORTED = np.sort(RNG.integers(0, 10, 8))
VALUES = RNG.integers(-1, 12, (3, 4))
INTS = RNG.integers(0, 6, 20)


@pytest.mark.parametrize("fn", [
    lambda L, s, v: L.bucketize(v, s),
    lambda L, s, v: L.bucketize(v, s, right=True, out_int32=True),
    lambda L, s, v: L.searchsorted(s, v),
    lambda L, s, v: L.searchsorted(s, v, side="right"),
    lambda L, s, v: L.searchsorted(s.reshape(2, 4), v[:2, :3].contiguous()),
    lambda L, s, v: L.searchsorted(s.flip(0), v, sorter=L.arange(7, -1, -1)),
], ids=["bucketize", "bucketize_right_int32", "searchsorted", "searchsorted_right", "searchsorted_rows",
        "searchsorted_sorter"])
def test_searching_matches_torch(fn):
    _same(*_both(fn, SORTED, VALUES), exact=True)


@pytest.mark.parametrize("fn", [
    lambda L, x: L.histc(x, bins=5),
    lambda L, x: L.histc(x, bins=4, min=-1, max=1),
    lambda L, x: L.histc(x[:1].expand(3), bins=4),
    lambda L, x: L.histogram(x, bins=6),
    lambda L, x: L.histogram(x, bins=L.tensor([-2.0, 0.0, 0.5, 3.0], dtype=x.dtype), density=True),
], ids=["histc_range_of_data", "histc_min_max", "histc_constant", "histogram", "histogram_edges_density"])
def test_histograms_match_torch(fn):
    _same(*_both(fn, RNG.standard_normal(30)))


@pytest.mark.parametrize("fn", [
    lambda L, x: L.bincount(x),
    lambda L, x: L.bincount(x, minlength=10),
    lambda L, x: L.bincount(x, weights=L.linspace(0, 1, 20)),
    lambda L, x: L.bincount(x, weights=L.linspace(0, 1, 20, dtype=L.float64)),
    lambda L, x: L.unique(x),
    lambda L, x: x.unique(return_inverse=True, return_counts=True),
    lambda L, x: L.unique(x.reshape(4, 5), dim=1, return_counts=True),
    lambda L, x: L.unique_consecutive(x.sort().values, return_inverse=True, return_counts=True),
    lambda L, x: L.unique_consecutive(x),
    lambda L, x: L.unique_consecutive(x.reshape(10, 2).repeat_interleave(2, dim=0), dim=0, return_counts=True),
    lambda L, x: L.unravel_index(x, (2, 3)),
    lambda L, x: L.gcd(x, x.flip(0) + 2),
    lambda L, x: x.lcm(x.flip(0) + 1),
    lambda L, x: L.bitwise_left_shift(x, 3),
    lambda L, x: (-x).bitwise_right_shift(1),
    lambda L, x: L.mode(x.reshape(4, 5), 0),
], ids=["bincount", "bincount_minlength", "bincount_weights", "bincount_weights64", "unique",
        "unique_inverse_counts", "unique_dim", "unique_consecutive_sorted", "unique_consecutive",
        "unique_consecutive_dim", "unravel_index", "gcd", "lcm", "left_shift", "right_shift", "mode_ints"])
def test_integer_ops_match_torch(fn):
    _same(*_both(fn, INTS), exact=True)


@pytest.mark.parametrize("fn", [
    lambda L: L.tril_indices(4, 3),
    lambda L: L.triu_indices(3, 5, 1),
    lambda L: L.tril_indices(5, 4, -2),
    lambda L: L.combinations(L.arange(4), 3),
    lambda L: L.combinations(L.arange(3.0), 0),
    lambda L: L.cartesian_prod(L.arange(3), L.arange(2), L.arange(2)),
    lambda L: L.frexp(L.tensor([0.0, -3.5, 1e-3, 1024.0])),
    lambda L: L.nextafter(L.tensor([1.0, -2.0]), L.tensor([2.0, -3.0])),
    lambda L: L.nextafter(L.tensor([1.0], dtype=L.float64), L.tensor([0.0], dtype=L.float64)),
    lambda L: L.heaviside(L.tensor([-1.0, 0.0, 2.0]), L.tensor([0.5])),
    lambda L: L.copysign(L.tensor([1.0, -2.0, 3.0]), L.tensor([-0.0, 1.0, -1.0])),
    lambda L: L.median(L.tensor([[1.0, float("nan"), 3.0], [2.0, 0.0, 1.0]]), 1),
    lambda L: L.nanmedian(L.tensor([float("nan"), 1.0, 3.0, float("nan")])),
    lambda L: L.cummax(L.tensor([1.0, 3.0, float("nan"), 2.0, 5.0]), 0),
    lambda L: L.cummin(L.tensor([[2, 1, 1, 3], [0, 4, -1, -1]]), 1),
    lambda L: L.logcumsumexp(L.tensor([float("-inf"), 0.0, float("-inf"), 800.0]), 0),
    lambda L: L.logaddexp(L.tensor([float("-inf"), 1000.0]), L.tensor([float("-inf"), 1000.0])),
    lambda L: L.aminmax(L.tensor([[3, 1], [4, 1]])),
    lambda L: L.nansum(L.tensor([[1, 2], [3, 4]]), 0),
    lambda L: L.diff(L.tensor([True, False, False, True])),
    lambda L: L.quantile(L.tensor([1.0, float("nan"), 3.0]), 0.5),
    lambda L: L.nanquantile(L.tensor([[float("nan")] * 3, [1.0, 2.0, 4.0]]), L.tensor([0.0, 1.0]), dim=1),
    lambda L: L.deg2rad(L.tensor([180, 90])),
    lambda L: L.atan2(L.tensor([1, -1]), L.tensor([0, -2])),
    lambda L: L.tensor_split(L.arange(7), L.tensor([2, 5])),
    lambda L: L.arange(10).tensor_split(4),
    lambda L: L.take(L.arange(6).reshape(2, 3), L.tensor([[0, 5], [-1, 2]])),
    lambda L: L.arange(6.0).reshape(2, 3).unfold(0, 2, 1),
    lambda L: L.rot90(L.arange(6).reshape(2, 3), 2, [1, 0]),
    lambda L: L.block_diag(L.ones(2, 2, dtype=L.int64), L.tensor([1.5])),
    lambda L: L.kron(L.eye(2), L.tensor([[1.0, 2.0], [3.0, 4.0]])),
], ids=["tril_indices", "triu_indices_offset", "tril_indices_negative", "combinations", "combinations_r0",
        "cartesian_prod3", "frexp", "nextafter", "nextafter64", "heaviside", "copysign_signed_zero",
        "median_nan", "nanmedian_all", "cummax_nan", "cummin_ints_ties", "logcumsumexp_infinite",
        "logaddexp_infinite", "aminmax_all", "nansum_ints", "diff_bool", "quantile_nan", "nanquantile_all_nan",
        "deg2rad_ints", "atan2_ints", "tensor_split_tensor", "tensor_split_sections", "take_negative",
        "unfold_rows", "rot90_reversed_dims", "block_diag_promotes", "kron_eye"])
def test_values_match_torch(fn):
    _same(fn(engine), fn(torch))


@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window", "bartlett_window",
                                  "kaiser_window"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("length", [0, 1, 7])
def test_windows_match_torch(name, periodic, length):
    _same(getattr(engine, name)(length, periodic), getattr(torch, name)(length, periodic))
    _same(getattr(engine, name)(6, dtype=engine.float64), getattr(torch, name)(6, dtype=torch.float64))


def test_factories_match_torch():
    with pytest.warns(UserWarning):
        expected = torch.range(1, 4, 0.5)
    _same(engine.range(1, 4, 0.5), expected)
    assert tuple(engine.empty_strided((2, 3), (3, 1)).shape) == (2, 3)
    assert tuple(engine.empty_permuted((2, 3, 4), (0, 2, 1)).shape) == (2, 3, 4)
    assert engine.zeros(2).new_empty_strided((4,), (1,)).dtype is engine.float32
    buffer = bytearray(np.arange(4, dtype=np.float32).tobytes())
    shared = engine.frombuffer(buffer, dtype=engine.float32, offset=4)
    _same(shared, torch.frombuffer(bytearray(buffer), dtype=torch.float32, offset=4))
    buffer[4:8] = np.float32(9).tobytes()
    assert shared[0].item() == 9.0  # the memory is shared
    array = np.arange(3.0)
    view = engine.asarray(array)
    array[0] = 5.0
    assert view[0].item() == 5.0
    copied = engine.asarray(array, copy=True)
    array[1] = 7.0
    assert copied[1].item() == 1.0
    _same(engine.asarray([1, 2], dtype=engine.float64), torch.asarray([1, 2], dtype=torch.float64))


def test_dtype_helpers_match_torch():
    dtypes = ["bool", "uint8", "int32", "int64", "float16", "float32", "float64", "complex64"]
    for a in dtypes:
        for b in dtypes:
            assert engine.can_cast(getattr(engine, a), getattr(engine, b)) == \
                torch.can_cast(getattr(torch, a), getattr(torch, b)), (a, b)
    for name in ("uint8", "int8", "float32", "bool"):
        assert engine.is_signed(engine.zeros(1, dtype=getattr(engine, name))) == \
            torch.is_signed(torch.zeros(1, dtype=getattr(torch, name)))
    assert engine.is_nonzero(engine.tensor([0.5])) and not engine.tensor([[0]]).is_nonzero()
    with pytest.raises(RuntimeError, match="more than one value"):
        engine.is_nonzero(engine.ones(2))
    assert engine.is_same_size(engine.ones(2, 3), engine.zeros(2, 3))
    assert (engine.pi, engine.e, engine.inf, engine.newaxis) == (torch.pi, torch.e, torch.inf, torch.newaxis)
    assert engine.typename(3) == torch.typename(3) == "int"
    assert engine.typename(engine.nn.Linear(1, 1)) == "engine.nn.modules.linear.Linear"


def test_inplace_forms_change_the_tensor_and_keep_the_graph():
    for name, arg in [("asin_", ()), ("sinh_", ()), ("erfinv_", ()), ("logit_", ()), ("hypot_", (0.5,)),
                      ("xlogy_", (2.0,)), ("copysign_", (-1.0,)), ("deg2rad_", ()), ("digamma_", ())]:
        base = np.array([0.3, 0.6, 0.1])
        e_leaf, t_leaf = engine.tensor(base, requires_grad=True), torch.tensor(base, requires_grad=True)
        e, t = e_leaf * 1, t_leaf * 1
        e_arg = [engine.tensor(a) if isinstance(a, float) and name == "hypot_" else a for a in arg]
        t_arg = [torch.tensor(a) if isinstance(a, float) and name == "hypot_" else a for a in arg]
        assert getattr(e, name)(*e_arg) is e
        getattr(t, name)(*t_arg)
        _same(e.detach(), t.detach())
        e.sum().backward()
        t.sum().backward()
        _same(e_leaf.grad, t_leaf.grad)
    x = engine.tensor([1.0, -2.0, 3.0])
    assert engine.abs_(x) is x and x.tolist() == [1.0, 2.0, 3.0]
    x.ge_(2.0)
    assert x.tolist() == [0.0, 1.0, 1.0] and x.dtype is engine.float32
    x.cumsum_(0)
    assert x.tolist() == [0.0, 1.0, 2.0]
    y = engine.zeros(3, 2)
    y.index_add_(0, engine.tensor([0, 0, 2]), engine.ones(3, 2))
    assert y.tolist() == [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]]
    y.scatter_reduce_(0, engine.tensor([[1, 1]]), engine.tensor([[5.0, -5.0]]), "amax")
    assert y[1].tolist() == [5.0, 0.0]
    y.masked_scatter_(y == 0, engine.tensor([7.0, 8.0]))
    assert y[1].tolist() == [5.0, 7.0]


def test_index_updates_refuse_bad_input_and_change_nothing():
    x = engine.zeros(3, 2)
    with pytest.raises(IndexError, match="source has shape"):
        x.index_add_(0, engine.tensor([0, 1]), engine.ones(3, 2))
    with pytest.raises(RuntimeError, match="reduce argument must be either"):
        x.scatter_reduce(0, engine.tensor([[0]]), engine.ones(1, 1), "max")
    with pytest.raises(IndexError, match="int32/int64"):
        x.index_fill(0, engine.tensor([0.0]), 1.0)
    with pytest.raises(RuntimeError, match="at least as many elements"):
        x.masked_scatter(x == 0, engine.ones(2))
    with pytest.raises(RuntimeError, match="bool tensor"):
        engine.positive(engine.tensor([True]))
    with pytest.raises(RuntimeError, match="not divisible"):
        engine.hsplit(engine.ones(2, 3), 2)
    assert not x.any()


def test_random_fills_follow_their_distributions():
    engine.manual_seed(0)
    n = 20000
    assert abs(engine.empty(n).exponential_(2.0).mean().item() - 0.5) < 0.02
    geometric = engine.empty(n).geometric_(0.25)
    assert geometric.min().item() >= 1 and abs(geometric.mean().item() - 4.0) < 0.15
    assert abs(engine.empty(n).cauchy_(1.0, 0.5).median().item() - 1.0) < 0.05
    assert abs(engine.empty(n).log_normal_(0.0, 0.5).log().std().item() - 0.5) < 0.02
    assert engine.full((n,), 0.3).bernoulli().mean().item() == pytest.approx(0.3, abs=0.02)
    counts = engine.bincount(engine.tensor([0.1, 0.0, 0.9]).multinomial(n, replacement=True), minlength=3)
    assert counts[1].item() == 0 and counts[2].item() > 7 * counts[0].item()


def test_fill_diagonal_apply_and_map_match_torch():
    for shape, wrap in [((3, 3), False), ((7, 3), True), ((7, 3), False), ((2, 2, 2), False)]:
        _same(engine.zeros(shape).fill_diagonal_(5.0, wrap), torch.zeros(shape).fill_diagonal_(5.0, wrap))
    _same(engine.arange(4.0).apply_(lambda v: v * v), torch.arange(4.0).apply_(lambda v: v * v))
    _same(engine.ones(2, 2).map_(engine.tensor([1.0, 2.0]), lambda a, b: a + b),
          torch.ones(2, 2).map_(torch.tensor([1.0, 2.0]), lambda a, b: a + b))


def test_torch_level_functional_spellings_match_torch():
    x = np.random.default_rng(3).standard_normal((2, 3, 5))
    ex, tx = engine.tensor(x, dtype=engine.float32), torch.tensor(x, dtype=torch.float32)
    _same(engine.dropout(ex, 0.5, False), torch.dropout(tx, 0.5, False))
    _same(engine.feature_dropout(ex, 0.3, False), torch.feature_dropout(tx, 0.3, False))
    dropped = engine.feature_dropout(engine.ones(4, 50, 3), 0.5, True)
    per_channel = dropped.amax(-1) == dropped.amin(-1)
    assert bool(per_channel.all()) and set(dropped.unique().tolist()) <= {0.0, 2.0}
    _same(engine.adaptive_max_pool1d(ex, 2), torch.adaptive_max_pool1d(tx, 2))
    _same(engine.max_pool1d_with_indices(ex, 2), torch.max_pool1d_with_indices(tx, 2))
    _same(engine.group_norm(ex, 1, None, None, 1e-5, True), torch.group_norm(tx, 1, None, None, 1e-5, True))
    _same(engine.instance_norm(ex, None, None, None, None, True, 0.1, 1e-5, True),
          torch.instance_norm(tx, None, None, None, None, True, 0.1, 1e-5, True))
    for name in ("hinge_embedding_loss", "margin_ranking_loss", "cosine_embedding_loss"):
        target_e, target_t = engine.ones(5), torch.ones(5)
        args_e = (ex[0], ex[1], target_e) if name != "hinge_embedding_loss" else (ex[0, 0], target_e)
        args_t = (tx[0], tx[1], target_t) if name != "hinge_embedding_loss" else (tx[0, 0], target_t)
        if name == "cosine_embedding_loss":
            args_e, args_t = (ex[0].mT, ex[1].mT, target_e), (tx[0].mT, tx[1].mT, target_t)
        for reduction in (0, 1, 2):
            _same(getattr(engine, name)(*args_e, 0.5, reduction), getattr(torch, name)(*args_t, 0.5, reduction))
    _same(engine.poisson_nll_loss(ex, ex.exp(), True, False, 1e-8, 2),
          torch.poisson_nll_loss(tx, tx.exp(), True, False, 1e-8, 2))
    _same(engine.triplet_margin_loss(ex[0], ex[1], ex[0] * 2, 1.0, 2, 1e-6, False, 0),
          torch.triplet_margin_loss(tx[0], tx[1], tx[0] * 2, 1.0, 2, 1e-6, False, 0))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        engine.kl_div(ex, ex, 5)


@pytest.mark.parametrize("fn", [
    lambda L: L.isin(L.tensor([1, 2, 3]), L.tensor([2, 5])),
    lambda L: L.isin(L.tensor([1, 2, 3]), 2, invert=True),
    lambda L: L.isposinf(L.tensor([1.0, float("inf"), -float("inf")])),
    lambda L: L.tensor([1.0, float("inf"), -float("inf")]).isneginf(),
    lambda L: L.isreal(L.tensor([1 + 0j, 1 + 1j])),
    lambda L: L.nonzero_static(L.tensor([0, 1, 0, 2]), size=3),
    lambda L: L.tensor([[1, 0], [1, 1]]).nonzero_static(size=2, fill_value=-5),
    lambda L: L.norm_except_dim(L.arange(6.0).reshape(2, 3), 2, 0),
    lambda L: L.norm_except_dim(L.arange(6.0).reshape(2, 3), 3, -1),
    lambda L: L.gradient(L.tensor([1.0, 4.0, 9.0, 16.0]), spacing=2.0),
    lambda L: L.gradient(L.tensor([[1.0, 4.0, 9.0], [2.0, 3.0, 5.0]])),
    lambda L: L.gradient(L.tensor([1.0, 4.0, 9.0, 16.0, 30.0]), spacing=(L.tensor([0.0, 1.0, 3.0, 4.0, 7.0]),),
                         edge_order=2),
    lambda L: L.gradient(L.tensor([[1.0, 4.0, 9.0, 3.0]]), dim=1, edge_order=2),
    lambda L: L.arange(6.0).reshape(2, 3).sum_to_size(1, 3),
    lambda L: L.fill(L.zeros(2, 2), 3.5),
    lambda L: L.zeros(2, 3)[:, 1:].storage_offset() + L.zeros(4)[2:].storage_offset(),
    lambda L: L.zeros(2, 3).t().dim_order(),
    lambda L: L.get_device(L.zeros(1)),
    lambda L: L.is_distributed(L.zeros(1)),
], ids=["isin", "isin_scalar_invert", "isposinf", "isneginf", "isreal", "nonzero_static",
        "nonzero_static_fill", "norm_except_dim", "norm_except_dim_all", "gradient_spacing", "gradient_2d",
        "gradient_coordinates_edge2", "gradient_edge2", "sum_to_size", "fill", "storage_offset", "dim_order",
        "get_device", "is_distributed"])
def test_more_values_match_torch(fn):
    ours, theirs = fn(engine), fn(torch)
    if isinstance(theirs, int | bool | tuple) and not (isinstance(theirs, tuple) and hasattr(theirs[0], "shape")):
        assert ours == theirs
    else:
        _same(ours, theirs)


def test_torch_level_cells_norms_and_convolution_match_torch():
    rng = np.random.default_rng(5)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    for name, gates in (("lstm_cell", 4), ("gru_cell", 3), ("rnn_tanh_cell", 1), ("rnn_relu_cell", 1)):
        w_ih, w_hh = rng.standard_normal((gates * 4, 3)), rng.standard_normal((gates * 4, 4))
        b_ih, b_hh = rng.standard_normal(gates * 4), rng.standard_normal(gates * 4)
        outs = []
        for lib in (engine, torch):
            args = [lib.tensor(a, requires_grad=True) for a in (x, w_ih, w_hh, b_ih, b_hh)]
            state = (lib.tensor(h), lib.tensor(c)) if name == "lstm_cell" else lib.tensor(h)
            out = getattr(lib, name)(args[0], state, *args[1:])
            out = out[0] + out[1] if name == "lstm_cell" else out
            out.sum().backward()
            outs.append((out.detach(), [a.grad for a in args]))
        _same(outs[0][0], outs[1][0])
        _same(outs[0][1], outs[1][1])
    m = rng.standard_normal((2, 3, 3))
    with pytest.warns(UserWarning):
        expected = torch.nuclear_norm(torch.tensor(m), (1, 2))
    _same(engine.nuclear_norm(engine.tensor(m), (1, 2)), expected)
    with pytest.warns(UserWarning):
        expected = torch.frobenius_norm(torch.tensor(m), (0, 2), True)
    _same(engine.frobenius_norm(engine.tensor(m), (0, 2), True), expected)
    inp, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    for transposed in (False, True):
        _same(engine.convolution(engine.tensor(inp), engine.tensor(w), None, [1, 1], [1, 1], [1, 1], transposed,
                                 [0, 0], 1),
              torch.convolution(torch.tensor(inp), torch.tensor(w), None, [1, 1], [1, 1], [1, 1], transposed,
                                [0, 0], 1))


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor, torch.quantize_per_channel:UserWarning")
def test_quantized_accessors_match_torch():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    q_e = engine.quantize_per_tensor(engine.tensor(x, dtype=engine.float32), 0.05, 3, engine.qint8)
    q_t = torch.quantize_per_tensor(torch.tensor(x, dtype=torch.float32), 0.05, 3, torch.qint8)
    assert engine.q_scale(q_e) == pytest.approx(torch.q_scale(q_t)) and engine.q_zero_point(q_e) == 3
    _same(engine.int_repr(q_e), torch.int_repr(q_t))
    qc_e = engine.quantize_per_channel(engine.tensor(x, dtype=engine.float32), engine.tensor([0.1, 0.2]),
                                       engine.tensor([0, 1]), 0, engine.qint8)
    qc_t = torch.quantize_per_channel(torch.tensor(x, dtype=torch.float32), torch.tensor([0.1, 0.2]),
                                      torch.tensor([0, 1]), 0, torch.qint8)
    _same(engine.q_per_channel_scales(qc_e), torch.q_per_channel_scales(qc_t))
    _same(engine.q_per_channel_zero_points(qc_e), torch.q_per_channel_zero_points(qc_t))
    assert engine.q_per_channel_axis(qc_e) == torch.q_per_channel_axis(qc_t) == 0
    for name in ("q_scale", "int_repr", "qscheme"):
        with pytest.raises(NotImplementedError, match=name):
            getattr(engine.zeros(2), name)()


def test_tensor_plumbing_methods_match_torch():
    for lib in (engine, torch):
        x = lib.zeros(2, 1, 3)
        assert x.squeeze_(1) is x and tuple(x.shape) == (2, 3)
        x.t_()
        assert tuple(x.shape) == (3, 2)
        x.unsqueeze_(0).transpose_(0, 2)
        assert tuple(x.shape) == (2, 3, 1)
        y = lib.arange(6.0)
        y.resize_(2, 2)
        assert y.tolist() == [[0.0, 1.0], [2.0, 3.0]]
        y.resize_as_(lib.zeros(3))
        assert y.tolist() == [0.0, 1.0, 2.0]
        assert lib.zeros(2, dtype=lib.float64).new([1, 2]).dtype == lib.float64
        assert tuple(lib.zeros(2).new(3, 4).shape) == (3, 4)
        z = lib.ones(3).map2_(lib.ones(3), lib.full((3,), 2.0), lambda a, b, c: a + b * c)
        assert z.tolist() == [3.0, 3.0, 3.0]
        assert isinstance(lib.zeros(2).data_ptr(), int)
        with pytest.raises(RuntimeError, match="resize"):
            lib.zeros(2, requires_grad=True).resize_(3)
        with pytest.raises(RuntimeError, match="leaf Variable"):
            lib.zeros(2, 1, requires_grad=True).squeeze_(1)
    leaf = engine.ones(2, 3, requires_grad=True)
    moved = leaf * 2
    moved.t_()
    (moved * engine.arange(2.0)).sum().backward()
    assert leaf.grad.tolist() == [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]


def test_state_switches_behave_as_torch():
    assert engine.is_autocast_cpu_enabled() is False and engine.get_autocast_cpu_dtype() is engine.bfloat16
    assert engine.get_autocast_gpu_dtype() is engine.float16
    engine.set_autocast_cpu_dtype(engine.float16)
    engine.set_autocast_enabled("cpu", True)
    try:
        assert engine.is_autocast_cpu_enabled() and engine.is_autocast_enabled("cpu")
        assert (engine.ones(2, 2) @ engine.ones(2, 2)).dtype is engine.float16
        assert engine.autocast_increment_nesting() == 1 and engine.autocast_decrement_nesting() == 0
    finally:
        engine.set_autocast_enabled("cpu", False)
        engine.set_autocast_cpu_dtype(engine.bfloat16)
    assert (engine.ones(2, 2) @ engine.ones(2, 2)).dtype is engine.float32
    engine.set_autocast_cache_enabled(False)
    assert not engine.is_autocast_cache_enabled()
    engine.set_autocast_cache_enabled(True)
    assert engine.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"
    engine.set_float32_matmul_precision("high")
    try:
        assert engine.backends.cuda.matmul.allow_tf32 and engine.get_float32_matmul_precision() == "high"
    finally:
        engine.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="Invalid float32 matmul precision"):
        engine.set_float32_matmul_precision("low")
    engine.set_deterministic_debug_mode("warn")
    try:
        assert engine.are_deterministic_algorithms_enabled()
        assert engine.is_deterministic_algorithms_warn_only_enabled()
        assert engine.get_deterministic_debug_mode() == 1
        engine.zeros(3).index_add(0, engine.tensor([0, 0]), engine.ones(2))  # CPU kernels are deterministic
    finally:
        engine.use_deterministic_algorithms(False)
    assert engine.get_deterministic_debug_mode() == torch.get_deterministic_debug_mode() == 0
    assert not engine.is_inference_mode_enabled()
    with engine.inference_mode():
        assert engine.is_inference_mode_enabled()
        with engine.inference_mode(False):
            assert not engine.is_inference_mode_enabled()
    assert not engine.is_inference_mode_enabled()
    assert engine.thread_safe_generator() is None


def test_printoptions_change_the_repr_like_torch():
    try:
        for kwargs in ({"precision": 2}, {"sci_mode": True}, {"profile": "short"}, {"threshold": 5, "edgeitems": 1}):
            engine.set_printoptions(**kwargs)
            torch.set_printoptions(**kwargs)
            for values in ([1.23456, 2.0], list(range(10))):
                ours = repr(engine.tensor(values, dtype=engine.float32)).replace("engine.", "torch.")
                assert ours == repr(torch.tensor(values, dtype=torch.float32))
    finally:
        engine.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")


def test_small_namespaces_behave_as_torch():
    assert engine.cond(engine.tensor(True), lambda x: x + 1, lambda x: x - 1, (engine.ones(1),)).item() == 2.0
    assert engine.cond(False, lambda: 1, lambda: 0) == 0
    assert engine.vmap is engine.func.vmap
    assert engine.get_device_module("cpu") is engine.cpu and engine.get_device_module("cuda:0") is engine.cuda
    assert engine.cpu.is_available() and engine.cpu.device_count() == 1
    assert isinstance(engine.IntTensor([1, 2]), engine.IntTensor) and engine.IntTensor([1, 2]).dtype is engine.int32
    assert not isinstance(engine.zeros(2), engine.IntTensor)
    assert tuple(engine.BoolTensor(2, 3).shape) == (2, 3) and engine.ByteTensor([1]).dtype is engine.uint8
    assert engine.torch_version.TorchVersion("2.1.0") >= (2, 0) and engine.torch_version.TorchVersion("1.9") < "1.10"
    assert (isinstance(engine.version.__version__, str) and engine.version.cuda is None) or engine.cuda.is_available()
    assert engine.functional.einsum is engine.einsum
    assert engine.GradScaler is engine.amp.GradScaler


def test_post_accumulate_grad_hook_runs_after_each_accumulation_like_torch():
    seen = {}
    for lib in (engine, torch):
        w = lib.ones(3, requires_grad=True)
        grads = seen[lib.__name__] = []
        handle = w.register_post_accumulate_grad_hook(lambda t, grads=grads: grads.append(t.grad.tolist()))
        (w * 2).sum().backward()
        (w * 3).sum().backward()
        handle.remove()
        (w * 3).sum().backward()
        assert w.grad.tolist() == [8.0, 8.0, 8.0]
        with pytest.raises(RuntimeError, match="non-leaf"):
            (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    assert seen["engine"] == seen["torch"] == [[2.0] * 3, [5.0] * 3]

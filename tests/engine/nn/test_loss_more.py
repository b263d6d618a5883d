"""Margin and likelihood losses (module and functional forms) against torch: values and gradients, float64."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 4))
Y = RNG.standard_normal((5, 4))
SIGNS = np.where(RNG.random((5, 4)) < 0.5, -1.0, 1.0)
BITS = (RNG.random((5, 4)) < 0.5).astype(np.float64)
CLS = np.array([0, 3, 1, 1, 2])
W4 = np.array([0.5, 1.0, 2.0, 1.5])
ML_TARGET = np.array([[3, 0, -1, 1], [1, 2, 3, -1], [0, -1, 2, 2], [2, 1, 0, 3], [-1, 1, 2, 3]])
VAR = np.abs(RNG.standard_normal((5, 4))) + 0.1
A, P, N = (RNG.standard_normal((6, 3)) for _ in range(3))


def _w(lib):
    return lib.tensor(W4)


CASES = [
    ("hinge_embedding", lambda lib, x: lib.nn.HingeEmbeddingLoss(margin=0.7)(x, lib.tensor(SIGNS)), [X]),
    ("hinge_embedding_none", lambda lib, x: lib.nn.functional.hinge_embedding_loss(
        x, lib.tensor(SIGNS), reduction="none"), [X]),
    ("soft_margin", lambda lib, x: lib.nn.SoftMarginLoss()(x, lib.tensor(SIGNS)), [X * 3]),
    ("soft_margin_sum", lambda lib, x: lib.nn.functional.soft_margin_loss(x, lib.tensor(Y), reduction="sum"), [X]),
    ("multilabel_soft_margin", lambda lib, x: lib.nn.MultiLabelSoftMarginLoss()(x, lib.tensor(BITS)), [X]),
    ("multilabel_soft_margin_weight_none", lambda lib, x: lib.nn.functional.multilabel_soft_margin_loss(
        x, lib.tensor(BITS), weight=_w(lib), reduction="none"), [X]),
    ("multilabel_margin", lambda lib, x, t: lib.nn.MultiLabelMarginLoss()(x, t), [X], [ML_TARGET]),
    ("multilabel_margin_none", lambda lib, x, t: lib.nn.functional.multilabel_margin_loss(x, t, reduction="none"),
     [X], [ML_TARGET]),
    ("multilabel_margin_unbatched", lambda lib, x, t: lib.nn.functional.multilabel_margin_loss(
        x, t, reduction="none"), [X[0]], [ML_TARGET[1]]),
    ("multi_margin", lambda lib, x, t: lib.nn.MultiMarginLoss()(x, t), [X], [CLS]),
    ("multi_margin_p2_weight", lambda lib, x, t: lib.nn.MultiMarginLoss(p=2, margin=0.6, weight=_w(lib),
                                                                        reduction="sum")(x, t), [X], [CLS]),
    ("multi_margin_none_unbatched", lambda lib, x, t: lib.nn.functional.multi_margin_loss(x, t, reduction="none"),
     [X[1]], [np.array(2)]),
    ("gaussian_nll", lambda lib, x, y, v: lib.nn.GaussianNLLLoss()(x, y, v), [X, Y, VAR]),
    ("gaussian_nll_full_none_clamped", lambda lib, x, y, v: lib.nn.functional.gaussian_nll_loss(
        x, y, v, full=True, eps=0.5, reduction="none"), [X, Y, VAR]),
    ("gaussian_nll_homoscedastic", lambda lib, x, y, v: lib.nn.GaussianNLLLoss(reduction="sum")(x, y, v),
     [X, Y, VAR[:, 0]]),
    ("gaussian_nll_broadcast_var", lambda lib, x, y, v: lib.nn.GaussianNLLLoss()(x, y, v), [X, Y, VAR[:, :1]]),
    ("gaussian_nll_float_var", lambda lib, x, y: lib.nn.functional.gaussian_nll_loss(x, y, 0.3), [X, Y]),
    ("triplet_margin", lambda lib, a, p, n: lib.nn.TripletMarginLoss(margin=2.0)(a, p, n), [A, P, N]),
    ("triplet_margin_p1_swap", lambda lib, a, p, n: lib.nn.TripletMarginLoss(p=1, swap=True, reduction="none")(
        a, p, n), [A, P, N]),
    ("triplet_distance_default", lambda lib, a, p, n: lib.nn.TripletMarginWithDistanceLoss()(a, p, n), [A, P, N]),
    ("triplet_distance_cosine_swap", lambda lib, a, p, n: lib.nn.TripletMarginWithDistanceLoss(
        distance_function=lambda u, v: 1 - lib.nn.functional.cosine_similarity(u, v), margin=0.5, swap=True,
        reduction="sum")(a, p, n), [A, P, N]),
]


@pytest.mark.parametrize(("name", "fn", "floats", "ints"), [(c[0], c[1], c[2], c[3] if len(c) > 3 else [])
                                                           for c in CASES], ids=[c[0] for c in CASES])
def test_loss_matches_torch(both, name, fn, floats, ints):
    both(fn, floats, ints)


@pytest.mark.filterwarnings("ignore:size_average and reduce args will be deprecated")
def test_legacy_reduction_flags(both):
    both(lambda lib, x: lib.nn.SoftMarginLoss(size_average=False)(x, lib.tensor(SIGNS)), [X])
    both(lambda lib, x: lib.nn.HingeEmbeddingLoss(reduce=False)(x, lib.tensor(SIGNS)), [X])


def test_repr_and_defaults(torch):
    for name, kwargs in [("MultiMarginLoss", {}), ("GaussianNLLLoss", {}), ("TripletMarginLoss", {}),
                         ("HingeEmbeddingLoss", {"margin": 2.0}), ("TripletMarginWithDistanceLoss", {})]:
        e, t = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        assert repr(e) == repr(t)
        for attr in ("margin", "p", "eps", "full", "swap", "reduction"):
            assert getattr(e, attr, None) == getattr(t, attr, None), (name, attr)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: F.multi_margin_loss(engine.randn(3, 4), engine.tensor([0, 4, 1])), RuntimeError, "out of range"),
    (lambda: F.multi_margin_loss(engine.randn(3, 4), engine.tensor([0, 1, 1]), p=3), ValueError, "p == 1"),
    (lambda: F.multilabel_margin_loss(engine.randn(2, 3), engine.tensor([[0, 1, 2]])), RuntimeError, "inconsistent"),
    (lambda: F.gaussian_nll_loss(engine.randn(2, 3), engine.randn(2, 3), -engine.ones(2, 3)), ValueError,
     "negative"),
    (lambda: F.gaussian_nll_loss(engine.randn(2, 3), engine.randn(2, 3), engine.ones(3, 2)), ValueError,
     "incorrect size"),
    (lambda: F.soft_margin_loss(engine.randn(3), engine.randn(3), reduction="avg"), ValueError, "not a valid"),
    (lambda: nn.TripletMarginLoss(margin=0.0), ValueError, "greater than 0"),
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_nll_loss2d_is_nll_loss(both):
    logp = np.ascontiguousarray(np.log(np.random.default_rng(2).dirichlet(np.ones(3), (2, 4, 5))).transpose(0, 3, 1, 2))
    target = np.random.default_rng(3).integers(0, 3, (2, 4, 5))
    with pytest.warns(FutureWarning, match="NLLLoss2d"):
        both(lambda lib, x, t: lib.nn.NLLLoss2d(reduction="sum")(x, t), [logp], [target])

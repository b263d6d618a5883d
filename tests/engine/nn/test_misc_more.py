"""3-d and circular padding, UpsamplingNearest2d/Bilinear2d, ChannelShuffle, Fold/Unfold against torch."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

RNG = np.random.default_rng(11)
X3 = RNG.standard_normal((2, 2, 3, 4, 5))
X2 = RNG.standard_normal((2, 6, 4, 5))
X1 = RNG.standard_normal((2, 3, 6))
COLS = RNG.standard_normal((2, 3 * 2 * 3, 12))

CASES = [
    ("zero_pad3d", lambda lib, x: lib.nn.ZeroPad3d((1, 0, 2, 1, 0, 1))(x), [X3]),
    ("constant_pad3d", lambda lib, x: lib.nn.ConstantPad3d(1, 3.5)(x), [X3]),
    ("reflection_pad3d", lambda lib, x: lib.nn.ReflectionPad3d((1, 2, 1, 0, 2, 1))(x), [X3]),
    ("replication_pad3d", lambda lib, x: lib.nn.ReplicationPad3d(2)(x), [X3]),
    ("circular_pad1d", lambda lib, x: lib.nn.CircularPad1d((2, 3))(x), [X1]),
    ("circular_pad2d", lambda lib, x: lib.nn.CircularPad2d((1, 2, 3, 0))(x), [X2]),
    ("circular_pad3d", lambda lib, x: lib.nn.CircularPad3d(1)(x), [X3]),
    ("upsampling_nearest2d", lambda lib, x: lib.nn.UpsamplingNearest2d(scale_factor=2)(x), [X2]),
    ("upsampling_nearest2d_size", lambda lib, x: lib.nn.UpsamplingNearest2d(size=(7, 3))(x), [X2]),
    ("upsampling_bilinear2d", lambda lib, x: lib.nn.UpsamplingBilinear2d(scale_factor=2)(x), [X2]),
    ("upsample_bilinear_size", lambda lib, x: lib.nn.functional.upsample_bilinear(x, size=(6, 9)), [X2]),
    ("upsample_nearest_fn", lambda lib, x: lib.nn.functional.upsample_nearest(x, scale_factor=3), [X2]),
    ("channel_shuffle", lambda lib, x: lib.nn.ChannelShuffle(3)(x), [X2]),
    ("native_channel_shuffle", lambda lib, x: (F.native_channel_shuffle if lib is engine  # torch's: no backward
                                               else lib.nn.functional.channel_shuffle)(x, 2), [X3]),
    ("unfold_module", lambda lib, x: lib.nn.Unfold((2, 3), dilation=(1, 2), padding=1, stride=(2, 1))(x), [X2]),
    ("fold", lambda lib, c: lib.nn.Fold((5, 5), (2, 3))(c), [COLS]),
    ("fold_stride_pad_dilation", lambda lib, c: lib.nn.Fold((6, 7), (2, 3), dilation=(2, 1), padding=(1, 0),
                                                            stride=(2, 3))(c[:, :, :6]), [COLS]),
    ("fold_unbatched", lambda lib, c: lib.nn.functional.fold(c, (5, 5), (2, 3)), [COLS[0]]),
]


@pytest.mark.filterwarnings("ignore:`nn.functional.upsample_")
@pytest.mark.parametrize(("name", "fn", "floats"), CASES, ids=[c[0] for c in CASES])
def test_layer_matches_torch(both, name, fn, floats):
    both(fn, floats)


def test_upsample_aliases_warn_deprecated():
    for fn in (F.upsample_nearest, F.upsample_bilinear):
        with pytest.warns(UserWarning, match="is deprecated"):
            fn(engine.randn(1, 1, 2, 2), scale_factor=2)


def test_fold_is_unfolds_adjoint():
    x = engine.randn(1, 2, 5, 6, dtype=engine.float64)
    cols = F.unfold(x, 3, padding=1, stride=2)
    ones = F.fold(engine.ones_like(cols), (5, 6), 3, padding=1, stride=2)
    back = F.fold(cols, (5, 6), 3, padding=1, stride=2)
    np.testing.assert_allclose(back.numpy(), (x * ones).numpy(), rtol=1e-12)


def test_repr_matches_torch(torch):
    for name, args, kwargs in [
        ("ZeroPad3d", (1,), {}), ("ConstantPad3d", ((1, 2, 0, 0, 1, 1), 0.5), {}), ("ReflectionPad3d", (2,), {}),
        ("ReplicationPad3d", (1,), {}), ("CircularPad1d", (2,), {}), ("CircularPad2d", ((1, 0, 2, 3),), {}),
        ("CircularPad3d", (1,), {}), ("UpsamplingNearest2d", (), {"scale_factor": 2}),
        ("UpsamplingBilinear2d", (), {"size": (4, 4)}), ("ChannelShuffle", (2,), {}),
        ("Fold", ((4, 5), 2), {"stride": 2}), ("Unfold", ((2, 3),), {"padding": 1}),
    ]:
        assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs)), name


@pytest.mark.parametrize(("call", "match"), [
    (lambda: F.channel_shuffle(engine.randn(2, 5, 3), 2), "divisible by groups"),
    (lambda: F.channel_shuffle(engine.randn(2, 4), 2), "at least 3 dimensions"),
    (lambda: F.fold(engine.randn(1, 7, 4), (3, 3), 2), "divisible by the product of kernel_size"),
    (lambda: F.fold(engine.randn(1, 8, 5), (3, 3), 2), "number of sliding blocks"),
    (lambda: nn.ReflectionPad3d(3)(engine.randn(1, 1, 3, 3, 3)), "Padding size should be less"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
def test_pdist_matches_torch(both, p):
    both(lambda lib, x: lib.nn.functional.pdist(x, p), [RNG.standard_normal((5, 3))])


def test_pdist_rejects_bad_input():
    with pytest.raises(RuntimeError, match="2D"):
        F.pdist(engine.randn(2, 3, 4))

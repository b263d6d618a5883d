"""Conv3d and ConvTranspose3d (module and functional) against torch: outputs and input/weight/bias grads."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

RNG = np.random.default_rng(13)
X = RNG.standard_normal((2, 4, 5, 6, 7))

CONV = [
    ("plain", {"in_channels": 4, "out_channels": 3, "kernel_size": 3}),
    ("stride_pad_dilation_groups", {"in_channels": 4, "out_channels": 6, "kernel_size": (3, 2, 3),
                                    "stride": (2, 1, 2), "padding": (1, 0, 1), "dilation": (1, 2, 1), "groups": 2}),
    ("same_no_bias", {"in_channels": 4, "out_channels": 2, "kernel_size": (3, 1, 5), "padding": "same",
                      "dilation": (2, 1, 1), "bias": False}),
    ("valid", {"in_channels": 4, "out_channels": 2, "kernel_size": 2, "padding": "valid"}),
    ("reflect", {"in_channels": 4, "out_channels": 2, "kernel_size": 3, "padding": 1, "padding_mode": "reflect"}),
    ("circular", {"in_channels": 4, "out_channels": 2, "kernel_size": 3, "padding": (1, 2, 1),
                  "padding_mode": "circular"}),
]

TRANSPOSED = [
    ("plain", {"in_channels": 4, "out_channels": 3, "kernel_size": 3}),
    ("stride_pad_outpad_groups_dilation", {"in_channels": 4, "out_channels": 6, "kernel_size": (3, 2, 3),
                                           "stride": (2, 1, 3), "padding": (1, 0, 1), "output_padding": (1, 0, 2),
                                           "groups": 2, "dilation": (2, 1, 1)}),
    ("no_bias_stride", {"in_channels": 4, "out_channels": 2, "kernel_size": 2, "stride": 2, "bias": False}),
]


@pytest.mark.parametrize(("name", "kwargs"), CONV, ids=[c[0] for c in CONV])
def test_conv3d_matches_torch(twin, torch, name, kwargs):
    engine.manual_seed(0)
    module = nn.Conv3d(**kwargs).double()
    twin(module, torch.nn.Conv3d(**kwargs).double(), [X], rtol=1e-9, atol=1e-10)
    assert repr(module) == repr(torch.nn.Conv3d(**kwargs))


@pytest.mark.parametrize(("name", "kwargs"), TRANSPOSED, ids=[c[0] for c in TRANSPOSED])
def test_conv_transpose3d_matches_torch(twin, torch, name, kwargs):
    engine.manual_seed(0)
    module = nn.ConvTranspose3d(**kwargs).double()
    twin(module, torch.nn.ConvTranspose3d(**kwargs).double(), [X[:, :, :3, :4, :3]], rtol=1e-9, atol=1e-10)
    assert repr(module) == repr(torch.nn.ConvTranspose3d(**kwargs))


def test_conv_transpose3d_output_size_and_unbatched(both):
    w = RNG.standard_normal((4, 2, 2, 3, 2))
    both(lambda lib, x, w: lib.nn.functional.conv_transpose3d(x, w, stride=2), [X[0, :, :2, :3, :2], w])
    m = nn.ConvTranspose3d(4, 2, 3, stride=2)
    assert tuple(m(engine.randn(1, 4, 2, 3, 2), output_size=(6, 8, 5)).shape) == (1, 2, 6, 8, 5)


def test_conv3d_functional_unbatched(both):
    w = RNG.standard_normal((3, 4, 2, 2, 2))
    both(lambda lib, x, w, b: lib.nn.functional.conv3d(x, w, b, padding=1), [X[0], w, RNG.standard_normal(3)])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: F.conv3d(engine.randn(3, 4, 4), engine.randn(2, 3, 1, 1, 1)), "4D \\(unbatched\\) or 5D"),
    (lambda: F.conv3d(engine.randn(1, 3, 4, 4, 4), engine.randn(2, 2, 1, 1, 1)), "channels"),
    (lambda: F.conv3d(engine.randn(1, 1, 2, 4, 4), engine.randn(1, 1, 3, 1, 1)), "depth"),
    (lambda: F.conv3d(engine.randn(1, 1, 4, 4, 4), engine.randn(1, 1, 3, 3, 3), stride=2, padding="same"),
     "strided"),
    (lambda: F.conv_transpose3d(engine.randn(1, 1, 2, 2, 2), engine.randn(1, 1, 2, 2, 2), output_padding=1),
     "output padding"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()

"""EmbeddingBag / embedding_bag against torch: every mode, offsets, 2-d input, padding_idx, per-sample weights."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn.functional as F
from engine import nn

RNG = np.random.default_rng(19)
W = RNG.standard_normal((10, 3))
IDX = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0, 7])
OFFSETS = np.array([0, 4, 4, 7])  # the second bag is empty
IDX2 = np.array([[1, 2, 2, 0], [9, 3, 0, 0], [0, 0, 0, 0]])
PSW = RNG.standard_normal(IDX.shape)

CASES = [
    *[(f"{mode}_offsets", lambda lib, w, i, o, mode=mode: lib.nn.functional.embedding_bag(i, w, o, mode=mode),
       [W], [IDX, OFFSETS]) for mode in ("sum", "mean", "max")],
    *[(f"{mode}_2d_padding", lambda lib, w, i, mode=mode: lib.nn.functional.embedding_bag(
        i, w, mode=mode, padding_idx=0), [W], [IDX2]) for mode in ("sum", "mean", "max")],
    ("include_last_offset", lambda lib, w, i, o: lib.nn.functional.embedding_bag(
        i, w, o, mode="mean", include_last_offset=True), [W], [IDX, np.array([0, 3, 3, 8, 11])]),
    ("per_sample_weights", lambda lib, w, p, i, o: lib.nn.functional.embedding_bag(
        i, w, o, mode="sum", per_sample_weights=p, padding_idx=4), [W, PSW], [IDX, OFFSETS]),
]


@pytest.mark.parametrize(("name", "fn", "floats", "ints"), CASES, ids=[c[0] for c in CASES])
def test_embedding_bag_matches_torch(both, name, fn, floats, ints):
    both(fn, floats, ints)


def test_module_matches_torch(twin, torch):
    engine.manual_seed(0)
    for kwargs in ({"mode": "sum"}, {"mode": "max", "padding_idx": -2}, {"include_last_offset": True}):
        module = nn.EmbeddingBag(10, 3, **kwargs).double()
        twin(module, torch.nn.EmbeddingBag(10, 3, **kwargs).double(), [IDX, np.array([0, 2, 2, 6])])
        assert repr(module) == repr(torch.nn.EmbeddingBag(10, 3, **kwargs))
    padded = nn.EmbeddingBag(10, 3, padding_idx=3)
    assert not padded.weight.detach().numpy()[3].any()


def test_from_pretrained_freezes():
    bag = nn.EmbeddingBag.from_pretrained(engine.tensor(W), mode="sum")
    assert not bag.weight.requires_grad
    out = bag(engine.tensor([[0, 1]]))
    np.testing.assert_allclose(out.numpy(), (W[0] + W[1])[None], rtol=1e-12)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: F.embedding_bag(engine.tensor([1, 2]), engine.randn(5, 2)), ValueError, "offsets has to be a 1D"),
    (lambda: F.embedding_bag(engine.tensor([[1, 2]]), engine.randn(5, 2), engine.tensor([0])), ValueError,
     "offsets has to be None"),
    (lambda: F.embedding_bag(engine.tensor([1, 2]), engine.randn(5, 2), engine.tensor([1])), RuntimeError,
     "offsets\\[0\\] has to be 0"),
    (lambda: F.embedding_bag(engine.tensor([1, 2]), engine.randn(5, 2), engine.tensor([0]), mode="min"), ValueError,
     "mode has to be one of"),
    (lambda: F.embedding_bag(engine.tensor([1, 2]), engine.randn(5, 2), engine.tensor([0]),
                             per_sample_weights=engine.ones(2)), NotImplementedError, "only supported for mode='sum'"),
    (lambda: F.embedding_bag(engine.tensor([1, 7]), engine.randn(5, 2), engine.tensor([0])), IndexError, "range"),
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()

"""ctc_loss / CTCLoss against torch: every reduction, zero_infinity, padded and concatenated targets, another
blank, unbatched input; gradients equal torch's, and a float64 gradcheck through log_softmax."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine import nn

RNG = np.random.default_rng(16)
T, N, C = 12, 3, 5
LOGITS = RNG.standard_normal((T, N, C))
TARGETS = RNG.integers(1, C, (N, 6))
IN_LEN = np.array([12, 10, 7])
TGT_LEN = np.array([6, 3, 4])


def _lp(x):
    return x.log_softmax(2)


CASES = [
    (red, zi, il) for red in ("none", "mean", "sum") for zi in (False, True)
    for il in (IN_LEN, np.array([12, 10, 2]))  # 2 frames cannot emit 4 labels: an infinite loss
]


@pytest.mark.parametrize(("reduction", "zero_infinity", "in_len"), CASES)
def test_ctc_loss_matches_torch(both, reduction, zero_infinity, in_len):
    both(lambda lib, x, t, il, tl: lib.nn.functional.ctc_loss(_lp(x), t, il, tl, reduction=reduction,
                                                                  zero_infinity=zero_infinity),
         [LOGITS], [TARGETS, in_len, TGT_LEN])


def test_ctc_module_concatenated_targets_and_blank(both):
    flat = np.concatenate([np.where(TARGETS[b, :TGT_LEN[b]] == 4, 0, TARGETS[b, :TGT_LEN[b]]) for b in range(N)])
    both(lambda lib, x, t, il, tl: lib.nn.CTCLoss(blank=4)(_lp(x), t, il, tl), [LOGITS], [flat, IN_LEN, TGT_LEN])


def test_ctc_repeated_labels_and_empty_target(both):
    targets = np.array([[2, 2, 3], [1, 1, 1], [0, 0, 0]])
    both(lambda lib, x, t, il, tl: lib.nn.functional.ctc_loss(_lp(x), t, il, tl, blank=0, reduction="sum"),
         [LOGITS], [targets, IN_LEN, np.array([3, 3, 0])])


def test_ctc_unbatched(both):
    both(lambda lib, x, t: lib.nn.functional.ctc_loss(x.log_softmax(1), t, (T,), (4,), reduction="none"),
         [LOGITS[:, 0]], [TARGETS[0, :4]])


def test_ctc_gradcheck_through_log_softmax():
    x = engine.tensor(RNG.standard_normal((6, 2, 4)), requires_grad=True)
    t = engine.tensor(np.array([[1, 2, 2], [3, 1, 0]]))
    assert engine.autograd.gradcheck(
        lambda v: engine.nn.functional.ctc_loss(v.log_softmax(2), t, [6, 5], [3, 2]), (x,))


def test_ctc_rejects_bad_lengths():
    lp = engine.randn(T, N, C).log_softmax(2)
    with pytest.raises(RuntimeError, match="at most"):
        nn.CTCLoss()(lp, engine.tensor(TARGETS), [13, 1, 1], [1, 1, 1])
    with pytest.raises(RuntimeError, match="blank"):
        nn.CTCLoss(blank=C)(lp, engine.tensor(TARGETS), IN_LEN.tolist(), TGT_LEN.tolist())
    with pytest.raises(ValueError, match="reduction"):
        engine.nn.functional.ctc_loss(lp, engine.tensor(TARGETS), IN_LEN.tolist(), TGT_LEN.tolist(), reduction="x")

"""engine.nn.utils.rnn against torch.nn.utils.rnn: packing, padding, and RNN/LSTM/GRU on packed batches."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.nn.utils import rnn as ernn


def _pair_modules(torch, name: str, **kwargs):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(4, 6, **kwargs).double()
    ours = getattr(engine.nn, name)(4, 6, **kwargs).double()
    ours.load_state_dict({k: engine.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return theirs, ours


def _np(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_batches_give_torchs_outputs_final_states_and_gradients(torch, name, bidirectional, batch_first):
    x = np.random.default_rng(1).normal(size=(3, 5, 4) if batch_first else (5, 3, 4))
    lengths = [2, 5, 3]
    theirs, ours = _pair_modules(torch, name, num_layers=2, bidirectional=bidirectional, batch_first=batch_first)
    tx, ex = torch.tensor(x, requires_grad=True), engine.tensor(x, requires_grad=True)
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=batch_first, enforce_sorted=False)
    ep = ernn.pack_padded_sequence(ex, lengths, batch_first=batch_first, enforce_sorted=False)
    np.testing.assert_allclose(_np(ep.data), _np(tp.data))
    assert ep.batch_sizes.tolist() == tp.batch_sizes.tolist() == [3, 3, 2, 1, 1]
    assert ep.sorted_indices.tolist() == tp.sorted_indices.tolist()
    to, th = theirs(tp)
    eo, eh = ours(ep)
    assert isinstance(eo, ernn.PackedSequence)
    tpad, tlen = torch.nn.utils.rnn.pad_packed_sequence(to, batch_first=batch_first, total_length=6)
    epad, elen = ernn.pad_packed_sequence(eo, batch_first=batch_first, total_length=6)
    np.testing.assert_allclose(_np(epad), _np(tpad), atol=1e-12)
    assert elen.tolist() == tlen.tolist() == lengths
    th, eh = (th[0], eh[0]) if name == "LSTM" else (th, eh)
    np.testing.assert_allclose(_np(eh), _np(th), atol=1e-12)  # each sequence's state at its own last step
    (tpad.pow(2).sum() + th.sum()).backward()
    (epad.pow(2).sum() + eh.sum()).backward()
    np.testing.assert_allclose(_np(ex.grad), _np(tx.grad), atol=1e-10)
    for (key, tparam), (_, eparam) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(_np(eparam.grad), _np(tparam.grad), atol=1e-10, err_msg=key)


def test_a_given_initial_state_is_in_the_batchs_order(torch):
    x = np.random.default_rng(2).normal(size=(4, 3, 4))
    h0 = np.random.default_rng(3).normal(size=(1, 3, 6))
    c0 = np.random.default_rng(4).normal(size=(1, 3, 6))
    theirs, ours = _pair_modules(torch, "LSTM")
    tp = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), [1, 4, 2], enforce_sorted=False)
    ep = ernn.pack_padded_sequence(engine.tensor(x), [1, 4, 2], enforce_sorted=False)
    _, (th, tc) = theirs(tp, (torch.tensor(h0), torch.tensor(c0)))
    _, (eh, ec) = ours(ep, (engine.tensor(h0), engine.tensor(c0)))
    np.testing.assert_allclose(_np(eh), _np(th), atol=1e-12)
    np.testing.assert_allclose(_np(ec), _np(tc), atol=1e-12)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_pack_sequence_and_their_inverses(torch, padding_side):
    seqs = [np.arange(n * 2, dtype=np.float64).reshape(n, 2) + n for n in (3, 1, 2)]
    tpad = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=True, padding_value=-1.0,
                                           padding_side=padding_side)
    epad = ernn.pad_sequence([engine.tensor(s) for s in seqs], batch_first=True, padding_value=-1.0,
                             padding_side=padding_side)
    np.testing.assert_array_equal(_np(epad), _np(tpad))
    packed = ernn.pack_sequence([engine.tensor(s) for s in seqs], enforce_sorted=False)
    tpacked = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(_np(packed.data), _np(tpacked.data))
    for back, original in zip(ernn.unpack_sequence(packed), seqs, strict=True):
        np.testing.assert_array_equal(_np(back), original)
    lengths = engine.tensor([3, 1, 2])
    for back, original in zip(ernn.unpad_sequence(ernn.pad_sequence([engine.tensor(s) for s in seqs]), lengths),
                              seqs, strict=True):
        np.testing.assert_array_equal(_np(back), original)


def test_bad_lengths_are_refused_with_torchs_messages():
    x = engine.zeros(4, 3, 2)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        ernn.pack_padded_sequence(x, [1, 3, 2])
    with pytest.raises(RuntimeError, match="has to be greater than 0"):
        ernn.pack_padded_sequence(x, [3, 2, 0])
    with pytest.raises(RuntimeError, match="equal to batch_size"):
        ernn.pack_padded_sequence(x, [3, 2])
    with pytest.raises(RuntimeError, match="smaller than or equal to 4"):
        ernn.pack_padded_sequence(x, [5, 2, 1])
    packed = ernn.pack_padded_sequence(x, [3, 2, 1])
    with pytest.raises(ValueError, match="total_length=2"):
        ernn.pad_packed_sequence(packed, total_length=2)
    with pytest.raises(ValueError, match="padding_side"):
        ernn.pad_sequence([x[0]], padding_side="middle")


def test_a_packed_sequence_moves_and_casts_whole():
    packed = ernn.pack_sequence([engine.ones(3, 2), engine.ones(1, 2)], enforce_sorted=True)
    assert packed.sorted_indices is None and packed.unsorted_indices is None
    as_double = packed.double()
    assert as_double.data.dtype == engine.float64 and as_double.batch_sizes.tolist() == [2, 1, 1]
    assert packed.cpu() is packed and not packed.is_cuda

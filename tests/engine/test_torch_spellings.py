"""PyTorch spellings a public example touches first (pytorch/examples' word_language_model)."""

from __future__ import annotations

import engine
from engine import nn


def test_long_float_and_double_tensor_are_legacy_typed_constructors_as_in_torch(torch):
    for name in ("LongTensor", "FloatTensor", "DoubleTensor"):
        ours, theirs = getattr(engine, name)(3, 2), getattr(torch, name)(3, 2)
        assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert getattr(engine, name)([1, 2]).tolist() == getattr(torch, name)([1, 2]).tolist()
    assert isinstance(engine.zeros(2, dtype=engine.int64), engine.LongTensor)
    assert not isinstance(engine.zeros(2), engine.LongTensor) and isinstance(engine.zeros(2), engine.FloatTensor)
    assert engine.LongTensor(4).zero_().view(-1, 2).tolist() == [[0, 0], [0, 0]]


def test_rnn_flatten_parameters_keeps_the_weights():
    lstm = nn.LSTM(3, 4)
    before = list(lstm.parameters())
    assert lstm.flatten_parameters() is None
    assert all(a is b for a, b in zip(lstm.parameters(), before, strict=True))


def test_multihead_attention_has_torchs_module_path(torch):
    assert torch.nn.modules.activation.MultiheadAttention is torch.nn.MultiheadAttention
    assert nn.modules.activation.MultiheadAttention is nn.MultiheadAttention

"""Recurrent layers export as ONNX's own LSTM / GRU / RNN operators (not unrolled cells).

onnxruntime equals the engine to 1e-4 at two batch sizes and two sequence lengths, both axes dynamic.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import engine

nn = engine.nn
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class Stack(nn.Module):
    """A recurrent layer with optional initial states; returns the output and the final state(s)."""

    def __init__(self, layer, with_state: bool):
        super().__init__()
        self.rnn, self.with_state = layer, with_state

    def forward(self, x, h0=None, c0=None):
        if not self.with_state:
            out, state = self.rnn(x)
        elif isinstance(self.rnn, nn.LSTM):
            out, state = self.rnn(x, (h0, c0))
        else:
            out, state = self.rnn(x, h0)
        return (out, *state) if isinstance(state, tuple) else (out, state)


LAYERS = {
    "lstm": lambda: nn.LSTM(5, 7),
    "lstm-2layers-bidirectional-batch_first": lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True,
                                                              batch_first=True),
    "gru": lambda: nn.GRU(5, 7, batch_first=True),
    "gru-2layers-bidirectional": lambda: nn.GRU(5, 7, num_layers=2, bidirectional=True),
    "rnn-tanh-no-bias": lambda: nn.RNN(5, 7, bias=False),
    "rnn-relu-2layers-bidirectional": lambda: nn.RNN(5, 7, num_layers=2, nonlinearity="relu", bidirectional=True,
                                                     batch_first=True),
}


def _inputs(layer, batch, length, with_state):
    x = engine.randn(batch, length, 5) if layer.batch_first else engine.randn(length, batch, 5)
    if not with_state:
        return (x,)
    shape = (layer.num_layers * (2 if layer.bidirectional else 1), batch, 7)
    states = (engine.randn(*shape), engine.randn(*shape)) if isinstance(layer, nn.LSTM) else (engine.randn(*shape),)
    return (x, *states)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "initial-state"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_native_recurrent_operator_matches_at_two_batches_and_two_lengths(name, with_state):
    engine.manual_seed(0)
    layer = LAYERS[name]()
    model = Stack(layer, with_state).eval()
    batch_axis, time_axis = (0, 1) if layer.batch_first else (1, 0)
    example = _inputs(layer, 3, 4, with_state)
    names = ["x", "h0", "c0"][:len(example)]
    axes = {"x": {batch_axis: "batch", time_axis: "time"}, **{n: {1: "batch"} for n in names[1:]}}
    buffer = io.BytesIO()
    engine.onnx.export(model, example, buffer, input_names=names, dynamic_axes=axes)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    kinds = [n.op_type for n in proto.graph.node]
    expected = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[name.split("-")[0]]
    assert kinds.count(expected) == layer.num_layers and "MatMul" not in kinds and "Gemm" not in kinds
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for batch, length in ((3, 4), (6, 9)):
        inputs = _inputs(layer, batch, length, with_state)
        got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})
        with engine.no_grad():
            want = model(*inputs)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4)


def test_a_traced_lstm_runs_at_another_sequence_length():
    engine.manual_seed(0)
    model = Stack(nn.LSTM(5, 7, num_layers=2, batch_first=True), False).eval()
    traced = engine.jit.trace(model, (engine.randn(2, 4, 5),))
    assert [n.op_name for n in traced.graph.nodes].count("engine.lstm") == 1
    x = engine.randn(5, 11, 5)
    with engine.no_grad():
        for g, w in zip(traced(x), model(x), strict=True):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6, atol=1e-6)


def test_training_mode_dropout_between_layers_is_refused():
    model = Stack(nn.LSTM(5, 7, num_layers=2, dropout=0.5), False).train()
    with pytest.raises(engine.onnx.UnsupportedOperatorError, match="dropout between recurrent layers"):
        engine.onnx.export(model, (engine.randn(4, 2, 5),), io.BytesIO())


class WithStateTuple(nn.Module):
    """``forward(input, hidden)`` with ``hidden = (h, c)``, as pytorch/examples' word_language_model."""

    def __init__(self):
        super().__init__()
        self.encoder, self.rnn = nn.Embedding(10, 5), nn.LSTM(5, 7, num_layers=2)

    def forward(self, tokens, hidden):
        out, hidden = self.rnn(self.encoder(tokens), hidden)
        return out, hidden


def test_a_tuple_argument_becomes_one_onnx_input_per_tensor():
    engine.manual_seed(0)
    model = WithStateTuple().eval()
    tokens = engine.LongTensor(6).zero_().view(-1, 1)
    hidden = (engine.randn(2, 1, 7), engine.randn(2, 1, 7))
    buffer = io.BytesIO()
    engine.onnx.export(model, (tokens, hidden), buffer)
    session = ort.InferenceSession(buffer.getvalue())
    assert [i.name for i in session.get_inputs()] == ["tokens", "hidden_0", "hidden_1"]
    tokens = engine.randint(0, 10, (6, 1))
    got = session.run(None, {"tokens": tokens.numpy(), "hidden_0": hidden[0].numpy(), "hidden_1": hidden[1].numpy()})
    with engine.no_grad():
        out, (h, c) = model(tokens, hidden)
    for g, w in zip(got, (out, h, c), strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)
    named = io.BytesIO()
    engine.onnx.export(model, (tokens, hidden), named, input_names=["x", "h0", "c0"])
    assert [i.name for i in ort.InferenceSession(named.getvalue()).get_inputs()] == ["x", "h0", "c0"]

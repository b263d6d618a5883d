"""ONNX lowerings of whole recurrent layers (``engine.lstm``, ``engine.gru``, ``engine.rnn_tanh``/``rnn_relu``).

Each layer becomes one ONNX LSTM / GRU / RNN node (opset 7+ semantics), so the sequence length
stays free. The gates are reordered from PyTorch's to ONNX's: LSTM (i, f, g, o) -> (i, o, f, c),
GRU (r, z, n) -> (z, r, h) with ``linear_before_reset=1`` (PyTorch applies the reset gate after
the recurrent projection). ``B`` is the input bias then the recurrent bias, as ONNX defines it.
"""

from __future__ import annotations

import numpy as np

import engine
from engine.onnx.lowerings import _bound, _unsupported

# ONNX gate block i takes PyTorch's block ORDER[i]
_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}


def _reordered(ctx, w: str, kind: str, hidden: int) -> str:
    order = _ORDER[kind]
    if order == tuple(range(len(order))):
        return w
    index = np.concatenate([np.arange(b * hidden, (b + 1) * hidden) for b in order]).astype(np.int64)
    return ctx.op("Gather", [w, ctx.const(index, hint="gates")], axis=0)


def _stacked(ctx, parts: list) -> str:
    axis0 = ctx.ints([0])
    return ctx.op("Concat", [ctx.op("Unsqueeze", [p, axis0]) for p in parts], axis=0)


def lower_recurrent(ctx, kind: str, x: str, states: list, params: list, *, hidden: int, has_biases: bool,
                    num_layers: int, bidirectional: bool, batch_first: bool, activation: str | None = None):
    """The ONNX nodes of a whole recurrent stack; returns (output, h_n[, c_n]) value names.

    ``states`` holds h_0 (and c_0 for LSTM), each (num_layers * directions, N, H); ``params`` the
    flat float weights in PyTorch's order (w_ih, w_hh[, b_ih, b_hh] per layer and direction).
    """
    directions = 2 if bidirectional else 1
    per = 4 if has_biases else 2
    if batch_first:
        x = ctx.op("Transpose", [x], perm=[1, 0, 2])
    attrs = {"hidden_size": hidden, "direction": "bidirectional" if bidirectional else "forward"}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    if kind == "RNN":
        attrs["activations"] = [activation] * directions
    finals: list[list[str]] = [[] for _ in states]
    for layer in range(num_layers):
        groups = [params[(layer * directions + d) * per:][:per] for d in range(directions)]
        w = _stacked(ctx, [_reordered(ctx, g[0], kind, hidden) for g in groups])
        r = _stacked(ctx, [_reordered(ctx, g[1], kind, hidden) for g in groups])
        b = _stacked(ctx, [ctx.op("Concat", [_reordered(ctx, g[2], kind, hidden), _reordered(ctx, g[3], kind, hidden)],
                                  axis=0) for g in groups]) if has_biases else ""
        initial = [ctx.op("Slice", [s, ctx.ints([layer * directions]), ctx.ints([(layer + 1) * directions]),
                                    ctx.ints([0])]) for s in states]
        outs = ctx.op(kind, [x, w, r, b, "", *initial], n_out=1 + len(states), **attrs)
        y = ctx.op("Transpose", [outs[0]], perm=[0, 2, 1, 3])  # (L, D, N, H) -> (L, N, D, H)
        x = ctx.op("Reshape", [y, ctx.ints([0, 0, directions * hidden])])
        for i, final in enumerate(outs[1:]):
            finals[i].append(final)
    output = ctx.op("Transpose", [x], perm=[1, 0, 2]) if batch_first else x
    return (output, *[f[0] if len(f) == 1 else ctx.op("Concat", f, axis=0) for f in finals])


def _hidden(node) -> int:
    return node.args[2][1].meta["shape"][1]  # weight_hh_l0: (gates * H, H)


def _check(node, a) -> None:
    if a["train"] and a["dropout"] and a["num_layers"] > 1:
        raise _unsupported(node, "dropout between recurrent layers in training mode (call model.eval() before "
                                 "exporting)")


def install() -> None:
    @_bound([engine.lstm])
    def lstm(ctx, node, a):
        _check(node, a)
        return lower_recurrent(ctx, "LSTM", a["input"], list(a["hx"]), list(a["params"]), hidden=_hidden(node),
                               has_biases=a["has_biases"], num_layers=a["num_layers"],
                               bidirectional=a["bidirectional"], batch_first=a["batch_first"])

    @_bound([engine.gru, engine.rnn_tanh, engine.rnn_relu])
    def single_state(ctx, node, a):
        _check(node, a)
        name = node.op_name.rsplit(".", 1)[-1]
        kind = "GRU" if name == "gru" else "RNN"
        return lower_recurrent(ctx, kind, a["input"], [a["hx"]], list(a["params"]), hidden=_hidden(node),
                               has_biases=a["has_biases"], num_layers=a["num_layers"],
                               bidirectional=a["bidirectional"], batch_first=a["batch_first"],
                               activation={"rnn_tanh": "Tanh", "rnn_relu": "Relu"}.get(name))

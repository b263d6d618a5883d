"""Whole recurrent layers as single ops: ``lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu`` (``torch.lstm`` ...).

One op runs every layer and direction over the whole sequence, so graph capture records one node
per recurrent layer (its sequence length stays free) and ONNX lowers it to the LSTM / GRU / RNN
operators. The input projection of a whole sequence is one GEMM per layer and direction; only the
hidden-state projection runs per time step. Gate order is PyTorch's: LSTM (i, f, g, o), GRU (r, z, n).
"""

from __future__ import annotations

from engine.ops.dropout import dropout as _dropout
from engine.ops.linear import linear
from engine.ops.shape import cat, stack


def lstm_cell_update(gates, c):
    """LSTM's gate math from the summed input and recurrent projections: (h, c) of the next step."""
    i, f, g, o = gates.chunk(4, -1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c.tanh(), c


def gru_cell_update(gi, gh, h):
    """GRU's gate math from the input projection `gi` and the recurrent one `gh`: h of the next step."""
    r_i, z_i, n_i = gi.chunk(3, -1)
    r_h, z_h, n_h = gh.chunk(3, -1)
    r = (r_i + r_h).sigmoid()
    z = (z_i + z_h).sigmoid()
    n = (n_i + r * n_h).tanh()
    return n + z * (h - n)


def rnn_tanh_step(gi, h, w_hh, b_hh):
    return (gi + linear(h, w_hh, b_hh)).tanh()


def rnn_relu_step(gi, h, w_hh, b_hh):
    return (gi + linear(h, w_hh, b_hh)).relu()


def lstm_step(gi, state, w_hh, b_hh):
    h, c = state
    return lstm_cell_update(gi + linear(h, w_hh, b_hh), c)


def gru_step(gi, h, w_hh, b_hh):
    return gru_cell_update(gi, linear(h, w_hh, b_hh), h)


def run_layers(input, states: list, params, has_biases: bool, num_layers: int, dropout: float, train: bool,
               bidirectional: bool, step, project=linear, batch_sizes: list[int] | None = None):
    """input (L, N, H_in); states: one h or (h, c) per layer*direction. Returns output, final states.

    ``params`` holds (w_ih, w_hh[, b_ih, b_hh]) per layer and direction, in PyTorch's flat order;
    ``project(x, w, b)`` is the input projection (a quantized one for the dynamic modules).
    With ``batch_sizes`` the input (and output) is a PackedSequence's data, (sum(batch_sizes), H): step t
    runs only the first ``batch_sizes[t]`` sequences, the others keep their state.
    """
    if batch_sizes is not None:
        return _run_packed_layers(input, states, params, has_biases, num_layers, dropout, train, bidirectional,
                                  step, project, batch_sizes)
    directions = 2 if bidirectional else 1
    finals = []
    layer_input = input
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            w_ih, w_hh, b_ih, b_hh = _weights_of(params, layer * directions + direction, has_biases)
            gi_all = project(layer_input, w_ih, b_ih)  # (L, N, gates * H): one GEMM for the sequence
            state = states[layer * directions + direction]
            steps = range(layer_input.shape[0])
            hs = [None] * layer_input.shape[0]
            for t in (reversed(steps) if direction == 1 else steps):
                state = step(gi_all[t], state, w_hh, b_hh)
                hs[t] = state[0] if isinstance(state, tuple) else state
            outputs.append(stack(hs, 0))
            finals.append(state)
        layer_input = outputs[0] if directions == 1 else cat(outputs, -1)
        if dropout and train and layer < num_layers - 1:
            layer_input = _dropout(layer_input, dropout, True)
    return layer_input, finals


def _run_packed_layers(data, states, params, has_biases, num_layers, dropout, train, bidirectional, step, project,
                       batch_sizes):
    directions = 2 if bidirectional else 1
    offsets = [0]
    for n in batch_sizes:
        offsets.append(offsets[-1] + n)
    finals = []
    layer_input = data
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            w_ih, w_hh, b_ih, b_hh = _weights_of(params, layer * directions + direction, has_biases)
            gi_all = project(layer_input, w_ih, b_ih)  # one GEMM for every step of every sequence
            state = states[layer * directions + direction]
            hs = [None] * len(batch_sizes)
            steps = range(len(batch_sizes))
            for t in (reversed(steps) if direction == 1 else steps):
                n = batch_sizes[t]
                state = _step_first_rows(step, gi_all[offsets[t]:offsets[t + 1]], state, n, w_hh, b_hh)
                hs[t] = (state[0] if isinstance(state, tuple) else state)[:n]
            outputs.append(cat(hs, 0))
            finals.append(state)
        layer_input = outputs[0] if directions == 1 else cat(outputs, -1)
        if dropout and train and layer < num_layers - 1:
            layer_input = _dropout(layer_input, dropout, True)
    return layer_input, finals


def _weights_of(params, index: int, has_biases: bool) -> tuple:
    """(w_ih, w_hh, b_ih, b_hh) of one layer and direction in PyTorch's flat order (biases None without them)."""
    per = 4 if has_biases else 2
    group = params[index * per:][:per]
    return (group[0], group[1], group[2], group[3]) if has_biases else (group[0], group[1], None, None)


def _step_first_rows(step, gi, state, n: int, w_hh, b_hh):
    """One step for the first ``n`` sequences of the batch; the rest keep their state."""
    parts = state if isinstance(state, tuple) else (state,)
    if n == parts[0].shape[0]:
        return step(gi, state, w_hh, b_hh)
    moved = step(gi, tuple(p[:n] for p in parts) if isinstance(state, tuple) else state[:n], w_hh, b_hh)
    moved_parts = moved if isinstance(moved, tuple) else (moved,)
    joined = tuple(cat([m, p[n:]], 0) for m, p in zip(moved_parts, parts, strict=True))
    return joined if isinstance(state, tuple) else joined[0]


def _time_major(input, batch_first: bool):
    return input.transpose(0, 1) if batch_first else input


def lstm(input, hx, params, has_biases: bool, num_layers: int, dropout: float, train: bool, bidirectional: bool,
         batch_first: bool):
    """A whole (multi-layer, maybe bidirectional) LSTM: returns (output, h_n, c_n) as ``torch.lstm``.

    ``hx`` is ``(h_0, c_0)``, each (num_layers * directions, N, H); ``params`` the flat weights.
    """
    h0, c0 = hx
    x = _time_major(input, batch_first)
    out, finals = run_layers(x, list(zip(h0.unbind(0), c0.unbind(0), strict=True)), list(params), has_biases,
                             num_layers, dropout, train, bidirectional, lstm_step)
    return (_time_major(out, batch_first), stack([h for h, _ in finals], 0), stack([c for _, c in finals], 0))


def _single_state(step):
    def op(input, hx, params, has_biases: bool, num_layers: int, dropout: float, train: bool, bidirectional: bool,
           batch_first: bool):
        x = _time_major(input, batch_first)
        out, finals = run_layers(x, list(hx.unbind(0)), list(params), has_biases, num_layers, dropout, train,
                                 bidirectional, step)
        return _time_major(out, batch_first), stack(finals, 0)

    return op


gru = _single_state(gru_step)
gru.__name__ = gru.__qualname__ = "gru"
gru.__doc__ = "A whole GRU (reset, update, new gates): returns (output, h_n) as ``torch.gru``."
rnn_tanh = _single_state(rnn_tanh_step)
rnn_tanh.__name__ = rnn_tanh.__qualname__ = "rnn_tanh"
rnn_tanh.__doc__ = "A whole Elman RNN with tanh: returns (output, h_n) as ``torch.rnn_tanh``."
rnn_relu = _single_state(rnn_relu_step)
rnn_relu.__name__ = rnn_relu.__qualname__ = "rnn_relu"
rnn_relu.__doc__ = "A whole Elman RNN with relu: returns (output, h_n) as ``torch.rnn_relu``."

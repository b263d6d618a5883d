"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional, batch_first) and their single-step cells.

The input projection of a whole sequence is one GEMM per layer and direction; only the hidden-state
projection runs per time step.
"""

from __future__ import annotations

import math

from engine.creation import empty, zeros
from engine.nn import init
from engine.nn.modules.module import Module
from engine.nn.parameter import Parameter
from engine.ops.dropout import dropout
from engine.ops.linear import linear
from engine.ops.shape import cat, stack


def _rnn_tanh_step(gi, h, w_hh, b_hh):
    return (gi + linear(h, w_hh, b_hh)).tanh()


def _rnn_relu_step(gi, h, w_hh, b_hh):
    return (gi + linear(h, w_hh, b_hh)).relu()


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


def _lstm_step(gi, state, w_hh, b_hh):
    h, c = state
    return lstm_cell_update(gi + linear(h, w_hh, b_hh), c)


def _gru_step(gi, h, w_hh, b_hh):
    return gru_cell_update(gi, linear(h, w_hh, b_hh), h)


class RNNBase(Module):
    """Parameters, initialisation and the layer/direction/time loops shared by RNN, LSTM and GRU."""

    _gates = 1

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        if not isinstance(dropout, int | float) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             "element being zeroed")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size:
            raise NotImplementedError("LSTM(proj_size>0) is not supported")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = self._gates * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for direction in range(directions):
                layer_input = input_size if layer == 0 else hidden_size * directions
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
                shapes = [(gate_size, layer_input), (gate_size, hidden_size)]
                if bias:
                    names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
                    shapes += [(gate_size,), (gate_size,)]
                for name, shape in zip(names, shapes, strict=True):
                    setattr(self, name, Parameter(empty(*shape, device=device, dtype=dtype)))
                self._flat_weights_names.extend(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def all_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    def _layer_params(self, layer: int, direction: int):
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        w_ih = getattr(self, f"weight_ih{suffix}")
        w_hh = getattr(self, f"weight_hh{suffix}")
        b_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None
        b_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None
        return w_ih, w_hh, b_ih, b_hh

    def _step(self):
        raise NotImplementedError

    def _initial_state(self, input, hx):
        directions = 2 if self.bidirectional else 1
        batch = input.shape[1]
        if hx is None:
            return zeros(self.num_layers * directions, batch, self.hidden_size, dtype=input.dtype,
                         device=input.device)
        expected = (self.num_layers * directions, batch, self.hidden_size)
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected hidden size {expected}, got {list(hx.shape)}")
        return hx

    def _run(self, input, states):
        """input (L, N, H_in); states: list (per layer*direction) of h or (h, c). Returns output, final states."""
        step = self._step()
        directions = 2 if self.bidirectional else 1
        finals = []
        layer_input = input
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, direction)
                gi_all = linear(layer_input, w_ih, b_ih)  # (L, N, gates * H): one GEMM for the sequence
                state = states[layer * directions + direction]
                steps = range(layer_input.shape[0])
                if direction == 1:
                    steps = reversed(steps)
                hs = [None] * layer_input.shape[0]
                for t in steps:
                    state = step(gi_all[t], state, w_hh, b_hh)
                    hs[t] = state[0] if isinstance(state, tuple) else state
                outputs.append(stack(hs, 0))
                finals.append(state)
            layer_input = outputs[0] if directions == 1 else cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = dropout(layer_input, self.dropout, True)
        return layer_input, finals

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _prepare_input(self, input):
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]}")
        return input, batched

    def _finish_output(self, output, batched: bool):
        if not batched:
            return output.squeeze(1)
        return output.transpose(0, 1) if self.batch_first else output


def _rnn_args(args, kwargs, names):
    values = dict(zip(names, args, strict=False))
    overlap = set(values) & set(kwargs)
    if overlap:
        raise TypeError(f"got multiple values for arguments {sorted(overlap)}")
    values.update(kwargs)
    return values


class _SimpleRecurrent(RNNBase):
    """RNN and GRU: the hidden state is one tensor."""

    def forward(self, input, hx=None):
        input, batched = self._prepare_input(input)
        if hx is not None and not batched:
            if hx.dim() != 2:
                raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
            hx = hx.unsqueeze(1)
        h0 = self._initial_state(input, hx)
        output, finals = self._run(input, list(h0.unbind(0)))
        h_n = stack(finals, 0)
        return self._finish_output(output, batched), (h_n if batched else h_n.squeeze(1))


class RNN(_SimpleRecurrent):
    """Elman RNN: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) (or relu).

    Args (positional order as PyTorch): input_size, hidden_size, num_layers=1, nonlinearity='tanh',
    bias=True, batch_first=False, dropout=0.0, bidirectional=False.
    """

    def __init__(self, *args, **kwargs):
        names = ["input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "dropout",
                 "bidirectional"]
        values = _rnn_args(args, kwargs, names)
        nonlinearity = values.pop("nonlinearity", "tanh")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", **values)
        self.nonlinearity = nonlinearity

    def _step(self):
        return _rnn_tanh_step if self.nonlinearity == "tanh" else _rnn_relu_step


class GRU(_SimpleRecurrent):
    """Gated recurrent unit (reset, update, new gates in PyTorch's order and formulation)."""

    _gates = 3

    def __init__(self, *args, **kwargs):
        names = ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"]
        super().__init__("GRU", **_rnn_args(args, kwargs, names))

    def _step(self):
        return _gru_step


class LSTM(RNNBase):
    """Long short-term memory (input, forget, cell, output gates); forward returns (output, (h_n, c_n)).

    Example:
        >>> lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True)
        >>> out, (h, c) = lstm(engine.randn(3, 5, 10))
        >>> out.shape, h.shape
        (engine.Size([3, 5, 20]), engine.Size([2, 3, 20]))
    """

    _gates = 4

    def __init__(self, *args, **kwargs):
        names = ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional",
                 "proj_size"]
        super().__init__("LSTM", **_rnn_args(args, kwargs, names))

    def _step(self):
        return _lstm_step

    def forward(self, input, hx=None):
        input, batched = self._prepare_input(input)
        if hx is not None:
            h0, c0 = hx
            if not batched:
                if h0.dim() != 2 or c0.dim() != 2:
                    raise RuntimeError("For unbatched 2-D input, hx and cx should also be 2-D")
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            h0, c0 = self._initial_state(input, h0), self._initial_state(input, c0)
        else:
            h0 = c0 = self._initial_state(input, None)
        output, finals = self._run(input, list(zip(h0.unbind(0), c0.unbind(0), strict=True)))
        h_n = stack([h for h, _ in finals], 0)
        c_n = stack([c for _, c in finals], 0)
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._finish_output(output, batched), (h_n, c_n)


class RNNCellBase(Module):
    """Parameters of a single recurrent step: weight_ih, weight_hh, bias_ih, bias_hh."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = self._gates * hidden_size
        self.weight_ih = Parameter(empty(gate_size, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(empty(gate_size, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(gate_size, device=device, dtype=dtype))
            self.bias_hh = Parameter(empty(gate_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _zeros(self, input):
        return zeros(*input.shape[:-1], self.hidden_size, dtype=input.dtype, device=input.device)


class RNNCell(RNNCellBase):
    """One Elman RNN step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        hx = self._zeros(input) if hx is None else hx
        step = _rnn_tanh_step if self.nonlinearity == "tanh" else _rnn_relu_step
        return step(linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh, self.bias_hh)


class GRUCell(RNNCellBase):
    """One GRU step."""

    _gates = 3

    def forward(self, input, hx=None):
        hx = self._zeros(input) if hx is None else hx
        return _gru_step(linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh, self.bias_hh)


class LSTMCell(RNNCellBase):
    """One LSTM step; returns (h', c')."""

    _gates = 4

    def forward(self, input, hx=None):
        if hx is None:
            hx = (self._zeros(input), self._zeros(input))
        return _lstm_step(linear(input, self.weight_ih, self.bias_ih), hx, self.weight_hh, self.bias_hh)

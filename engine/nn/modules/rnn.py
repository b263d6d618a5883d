"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional, batch_first) and their single-step cells.

A layer's forward is one op (``engine.lstm``, ``engine.gru``, ``engine.rnn_tanh``/``rnn_relu`` in
engine/ops/rnn.py), so a traced model keeps its sequence length free and exports to ONNX's LSTM/GRU/RNN.
"""

from __future__ import annotations

import math

from engine.creation import empty, zeros
from engine.nn import init
from engine.nn.modules.module import Module
from engine.nn.parameter import Parameter
from engine.ops.linear import linear
from engine.ops.rnn import gru, lstm, rnn_relu, rnn_tanh, run_layers
from engine.ops.rnn import gru_step as _gru_step
from engine.ops.rnn import lstm_step as _lstm_step
from engine.ops.rnn import rnn_relu_step as _rnn_relu_step
from engine.ops.rnn import rnn_tanh_step as _rnn_tanh_step
from engine.ops.shape import stack


def _layer_op(mode: str):
    # NOTE: looked up at call time: graph capture rebinds these module names to its recording entries.
    return {"LSTM": lstm, "GRU": gru, "RNN_TANH": rnn_tanh, "RNN_RELU": rnn_relu}[mode]


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

    def flatten_parameters(self) -> None:
        """Does nothing, as in PyTorch off cuDNN: the engine never packs the weights into one buffer."""

    @property
    def all_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    def _initial_state(self, input, hx, batch: int | None = None):
        directions = 2 if self.bidirectional else 1
        batch = input.shape[1] if batch is None else batch
        if hx is None:
            return zeros(self.num_layers * directions, batch, self.hidden_size, dtype=input.dtype,
                         device=input.device)
        expected = (self.num_layers * directions, batch, self.hidden_size)
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected hidden size {expected}, got {list(hx.shape)}")
        return hx

    def _run(self, input, hx):
        """input (L, N, H_in); hx: h_0 (or (h_0, c_0) for LSTM). Returns output, h_n (or (h_n, c_n)).

        One recorded op (``engine.lstm`` ...) runs every layer and direction, as PyTorch's ``_VF`` call.
        """
        out = _layer_op(self.mode)(input, hx, self.all_weights, self.bias, self.num_layers, self.dropout, self.training,
                              self.bidirectional, False)
        return (out[0], (out[1], out[2])) if self.mode == "LSTM" else out

    def _forward_packed(self, packed, hx):
        """A PackedSequence in, one out; h_n (and c_n) per sequence at its own last step, in the batch's order."""
        from engine.nn.utils.rnn import PackedSequence

        data, batch_sizes, sorted_indices, unsorted_indices = packed
        if data.dim() != 2 or data.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {data.shape[-1]}")
        sizes = [int(n) for n in batch_sizes.tolist()]
        batch = sizes[0] if sizes else 0
        lstm_mode = self.mode == "LSTM"

        def sorted_state(h):  # a given state is in the batch's order; the packed steps are in sorted order
            if h is None:
                return self._initial_state(data, None, batch)
            h = self._initial_state(data, h, batch)
            return h.index_select(1, sorted_indices) if sorted_indices is not None else h
        if lstm_mode:
            h0, c0 = (None, None) if hx is None else hx
            states = list(zip(sorted_state(h0).unbind(0), sorted_state(c0).unbind(0), strict=True))
        else:
            states = list(sorted_state(hx).unbind(0))
        step = {"LSTM": _lstm_step, "GRU": _gru_step, "RNN_TANH": _rnn_tanh_step, "RNN_RELU": _rnn_relu_step}[self.mode]
        out, finals = run_layers(data, states, self.all_weights, self.bias, self.num_layers, self.dropout,
                                 self.training, self.bidirectional, step, batch_sizes=sizes)
        output = PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)

        def in_batch_order(h):
            return h.index_select(1, unsorted_indices) if unsorted_indices is not None else h
        if lstm_mode:
            return output, (in_batch_order(stack([h for h, _ in finals], 0)),
                            in_batch_order(stack([c for _, c in finals], 0)))
        return output, in_batch_order(stack(finals, 0))

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


def _is_packed(input) -> bool:
    from engine.nn.utils.rnn import PackedSequence

    return isinstance(input, PackedSequence)


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
        if _is_packed(input):
            return self._forward_packed(input, hx)
        input, batched = self._prepare_input(input)
        if hx is not None and not batched:
            if hx.dim() != 2:
                raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
            hx = hx.unsqueeze(1)
        output, h_n = self._run(input, self._initial_state(input, hx))
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


class GRU(_SimpleRecurrent):
    """Gated recurrent unit (reset, update, new gates in PyTorch's order and formulation)."""

    _gates = 3

    def __init__(self, *args, **kwargs):
        names = ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"]
        super().__init__("GRU", **_rnn_args(args, kwargs, names))


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

    def forward(self, input, hx=None):
        if _is_packed(input):
            return self._forward_packed(input, hx)
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
        output, (h_n, c_n) = self._run(input, (h0, c0))
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

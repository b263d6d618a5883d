"""``engine.nn.utils.rnn``: variable-length batches for recurrent layers, as ``torch.nn.utils.rnn``.

A `PackedSequence` holds the steps of sequences sorted by decreasing length, time-major: ``data``
is every sequence's step 0, then every step 1 of the sequences that long, ...; ``batch_sizes[t]``
says how many sequences have a step t. RNN, LSTM and GRU take one and return one, running each
step on only the sequences still going (so ``h_n`` is each sequence's state at its own last step).
Packing and padding are gathers (``index_select``), so gradients flow back to the padded input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

import engine
from engine.ops.shape import cat, stack

_UNSORTED = ("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can pass "
             "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this requirement "
             "if you do not need ONNX exportability.")


class _PackedSequenceBase(NamedTuple):
    data: engine.Tensor
    batch_sizes: engine.Tensor
    sorted_indices: engine.Tensor | None
    unsorted_indices: engine.Tensor | None


class PackedSequence(_PackedSequenceBase):
    """Packed steps of a batch of sequences (build it with `pack_padded_sequence` or `pack_sequence`)."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:  # PyTorch's (data, batch_sizes) tuple form
            data, batch_sizes = data
        if batch_sizes.dim() != 1:
            raise ValueError(f"batch_sizes should always be a 1D CPU int64 tensor, but got {batch_sizes.dim()}D")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        device = data.device
        return type(self)(data, self.batch_sizes, _to(self.sorted_indices, device), _to(self.unsorted_indices, device))

    def cuda(self, *args, **kwargs) -> PackedSequence:
        return self.to(engine.device("cuda", *args) if args else "cuda", **kwargs)

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def double(self) -> PackedSequence:
        return self.to(dtype=engine.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=engine.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=engine.float16)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def _to(index, device):
    return None if index is None else index.to(device)


def invert_permutation(permutation):
    """The permutation that undoes ``permutation`` (None stays None)."""
    if permutation is None:
        return None
    order = np.asarray(permutation.cpu().numpy(), dtype=np.int64)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size, dtype=np.int64)
    return engine.tensor(inverse, device=permutation.device)


def _lengths_array(lengths) -> np.ndarray:
    if isinstance(lengths, engine.Tensor):
        if lengths.dim() != 1:
            raise ValueError(f"lengths must be a 1D tensor, got {lengths.dim()}D")
        return np.asarray(lengths.cpu().numpy()).astype(np.int64)
    return np.asarray(list(lengths), dtype=np.int64).reshape(-1)


def pack_padded_sequence(input, lengths, batch_first: bool = False, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) — (B, T, *) with ``batch_first`` — of sequences ``lengths`` long."""
    sizes = _lengths_array(lengths)
    batch_dim = 0 if batch_first else 1
    if sizes.size != input.shape[batch_dim]:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {sizes.size} "
                           f"(batch_size={input.shape[batch_dim]})")
    if enforce_sorted:
        if np.any(sizes[1:] > sizes[:-1]):
            raise RuntimeError(_UNSORTED)
        sorted_indices = None
    else:
        order = np.argsort(-sizes, kind="stable")
        sizes = sizes[order]
        sorted_indices = engine.tensor(order, device=input.device)
        input = input.index_select(batch_dim, sorted_indices)
    if sizes.size and sizes[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' "
                           "that is <= 0")
    steps = input.shape[1 if batch_first else 0]
    if sizes.size and sizes[0] > steps:
        raise RuntimeError(f"Expected sequence length to be smaller than or equal to {steps}, but got {sizes[0]}")
    x = input.transpose(0, 1) if batch_first else input
    batch = x.shape[1]
    batch_sizes = (sizes[None, :] > np.arange(int(sizes[0]) if sizes.size else 0)[:, None]).sum(1)
    rows = np.concatenate([t * batch + np.arange(n) for t, n in enumerate(batch_sizes)]) if batch_sizes.size else \
        np.zeros(0, np.int64)
    data = x.reshape(-1, *x.shape[2:]).index_select(0, engine.tensor(rows.astype(np.int64), device=x.device))
    return PackedSequence(data, engine.tensor(batch_sizes.astype(np.int64)), sorted_indices,
                          invert_permutation(sorted_indices))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None):
    """Undo `pack_padded_sequence`: returns (padded, lengths), in the batch's original order."""
    batch_sizes = np.asarray(sequence.batch_sizes.numpy(), dtype=np.int64)
    steps = batch_sizes.size
    if total_length is not None:
        if total_length < steps:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {steps}")
        steps = total_length
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    data = sequence.data
    pad_row = len(data)
    index = np.full((steps, batch), pad_row, dtype=np.int64)
    offset = 0
    for t, n in enumerate(batch_sizes):
        index[t, :n] = np.arange(offset, offset + n)
        offset += n
    filler = engine.full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    rows = engine.tensor(index.reshape(-1), device=data.device)
    padded = cat([data, filler], 0).index_select(0, rows).reshape(steps, batch, *data.shape[1:])
    lengths = (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(1).astype(np.int64)
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(1, sequence.unsorted_indices)
        lengths = lengths[np.asarray(sequence.unsorted_indices.cpu().numpy(), dtype=np.int64)]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, engine.tensor(lengths)


def pad_sequence(sequences: Sequence, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right"):
    """Stack tensors of different lengths (dim 0) into (T, B, *) — (B, T, *) with ``batch_first``."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if isinstance(sequences, engine.Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        if missing:
            filler = engine.full((missing, *s.shape[1:]), padding_value, dtype=s.dtype, device=s.device)
            s = cat([s, filler] if padding_side == "right" else [filler, s], 0)
        padded.append(s)
    return stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """The tensors `pad_sequence` stacked, each cut back to its length."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, :int(n)] for i, n in enumerate(_lengths_array(lengths))]


def pack_sequence(sequences: Sequence, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of tensors of different lengths (dim 0)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The tensors `pack_sequence` packed, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
           "pad_sequence", "unpack_sequence", "unpad_sequence"]

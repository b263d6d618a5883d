"""Dynamically quantized modules (``torch.ao.nn.quantized.dynamic``)."""

from engine.ao.nn.quantized.dynamic.modules import GRU, LSTM, Linear

__all__ = ["GRU", "LSTM", "Linear"]

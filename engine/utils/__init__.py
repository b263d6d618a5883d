"""Utilities, as ``torch.utils``: ``engine.utils.data`` holds datasets and the DataLoader, ``checkpoint`` activation
checkpointing."""

from engine.utils import checkpoint, data

__all__ = ["checkpoint", "data"]

"""Utilities, as ``torch.utils``: ``engine.utils.data`` holds datasets and the DataLoader."""

from engine.utils import data

__all__ = ["data"]

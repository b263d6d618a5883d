"""``cupy.lib`` (fake)."""

from fake_cupy.lib import stride_tricks

__all__ = ["stride_tricks"]

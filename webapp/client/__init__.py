"""Kiln's Python client and `kiln` CLI. Client code imports no Django."""

from webapp.client.client import Client, KilnError

__all__ = ["Client", "KilnError"]

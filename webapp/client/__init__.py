"""Kiln's Python client and `kiln` CLI. Client code imports no Django."""

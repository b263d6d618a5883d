"""Kiln's scheduler: placement policy (pure functions) and the loop that applies it."""

"""The one size and depth limit on specs, whichever way they arrive (YAML or JSON text, a form, an API body).

Parsers and validators recurse, and YAML aliases can make a small text a huge tree: a spec deeper than
MAX_SPEC_DEPTH or with more than MAX_SPEC_NODES values (counting through aliases) is refused with a
SpecError naming `spec` before anything walks it.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_SPEC_BYTES = 1_000_000
MAX_SPEC_DEPTH = 32  # a real spec is about 4 deep (sweep.parameters.name.values)
MAX_SPEC_NODES = 50_000


class SpecShapeError(ValueError):
    """The spec is too large or too deeply nested; the message says which limit."""


def check_spec_text(text: str) -> None:
    """Refuse YAML/JSON text over the size or depth limit, reading only its events (no recursion, no aliases)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SpecShapeError(f"is larger than {MAX_SPEC_BYTES:,} bytes")
    try:
        _check_depth(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 20x faster
    except yaml.YAMLError:
        _check_depth(text, yaml.SafeLoader)  # NOTE: libyaml reads ahead and stops at depth 1000 with its own error


def _check_depth(text: str, loader: Any) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_SPEC_DEPTH:
                raise _too_deep()
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def check_spec_shape(data: Any) -> None:
    """Refuse a parsed spec deeper than MAX_SPEC_DEPTH or larger than MAX_SPEC_NODES (aliases and cycles included)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_SPEC_NODES:
            raise SpecShapeError(f"has more than {MAX_SPEC_NODES:,} values")
        if isinstance(value, dict | list):
            if depth >= MAX_SPEC_DEPTH:
                raise _too_deep()
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _too_deep() -> SpecShapeError:
    return SpecShapeError(f"is nested more than {MAX_SPEC_DEPTH} levels deep")

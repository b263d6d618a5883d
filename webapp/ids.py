"""The one parser for whole numbers that arrive as text: ids in paths and queries, steps, page numbers.

Only ASCII digits count (`str.isdigit()` also accepts '²', and `int()` reads other scripts' digits and
'1_000'), and a number must fit the database's bigint, so nothing from a URL overflows a query.
"""

from __future__ import annotations

import re

MAX_ID = 2**63 - 1  # the database's bigint (ids, steps); SQLite's integers are the same width
MIN_BIGINT = -(2**63)
_INT = re.compile(r"-?[0-9]{1,19}")


def parse_int(value: object, *, low: int = MIN_BIGINT, high: int = MAX_ID) -> int | None:
    """`value` as an int in [low, high] when it is one written in ASCII digits (or an int), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if low <= number <= high else None


def parse_id(value: object) -> int | None:
    """A database id (1 to 2**63 - 1) from text or an int, else None: callers answer 404 or name the field."""
    return parse_int(value, low=1)


class IdConverter:
    """The `<id:name>` URL converter: ASCII digits within the bigint range, so a larger number is a 404, not a 500."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValueError(f"{value!r} is not an id")
        return number

    def to_url(self, value: int) -> str:
        return str(value)

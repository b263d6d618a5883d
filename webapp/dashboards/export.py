"""The compare view's data as CSV, at full resolution, streamed so any size fits."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from webapp.experiments.models import Metric, Run
from webapp.experiments.nonfinite import text_value

HEADER = ["run_id", "run_number", "run_name", "key", "step", "value", "wall_time"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_lines(runs: list[Run], keys: list[str] | tuple[str, ...]) -> Iterator[str]:
    """CSV text, header first, then every point of every (run, key) in (run, key, step) order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(HEADER)
    yield flush()
    for run in runs:
        name = _cell(run.name)
        for key in keys:
            points = (
                Metric.objects.filter(run_id=run.id, key=key)
                .order_by("step").values_list("step", "value", "wall_time").iterator(chunk_size=10_000)
            )
            cell = _cell(key)
            for count, (step, value, wall_time) in enumerate(points, start=1):
                writer.writerow([run.id, run.number, name, cell, step, text_value(value), repr(wall_time)])
                if count % 5000 == 0:
                    yield flush()
            yield flush()


def _cell(text: str) -> str:
    """Text that a spreadsheet shows as text, never runs as a formula."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text

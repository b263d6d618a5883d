"""What a profile collected: ``FunctionEvent`` (one op call or range), ``FunctionEventAvg`` (events grouped by
name) and ``EventList`` with PyTorch's ``table()``, ``key_averages()`` and ``export_chrome_trace()``.

Times are microseconds, as PyTorch's. An event's self time is its total less its direct children's totals.
"""

from __future__ import annotations

import json
import os

_STAT_WIDTH = 12
_MAX_NAME_WIDTH = 55
_MAX_SHAPES_WIDTH = 80


class FunctionEvent:
    """One op call (``engine::add``) or ``record_function`` range, with its time span and children."""

    def __init__(self, id, name, thread, start_us, end_us=0.0, input_shapes=None, is_user_annotation=False):
        self.id = id
        self.name = name
        self.thread = thread
        self.start_us = start_us
        self.end_us = end_us
        self.input_shapes = input_shapes if input_shapes is not None else []
        self.is_user_annotation = is_user_annotation
        self.cpu_parent: FunctionEvent | None = None
        self.cpu_children: list[FunctionEvent] = []
        self.device_start_us: float | None = None  # offset from the profile's start on the device (CUDA activity)
        self.device_time_total = 0.0
        self.count = 1

    @property
    def key(self) -> str:
        return self.name

    @property
    def cpu_time_total(self) -> float:
        return self.end_us - self.start_us

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - sum(child.cpu_time_total for child in self.cpu_children)

    @property
    def self_device_time_total(self) -> float:
        return max(0.0, self.device_time_total - sum(child.device_time_total for child in self.cpu_children))

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total

    @property
    def device_time(self) -> float:
        return self.device_time_total

    # PyTorch's older spellings of the device columns (``sort_by="cuda_time_total"``)
    cuda_time_total = property(lambda self: self.device_time_total)
    self_cuda_time_total = property(lambda self: self.self_device_time_total)

    def __repr__(self):
        return (f"<FunctionEvent id={self.id} name={self.name} cpu_time_total={_format_time(self.cpu_time_total)} "
                f"self_cpu_time_total={_format_time(self.self_cpu_time_total)} input_shapes={self.input_shapes}>")


class FunctionEventAvg:
    """Events of one key (and input shapes, when grouped by them) summed: totals, self times and call counts."""

    def __init__(self, key, input_shapes=None):
        self.key = key
        self.input_shapes = input_shapes if input_shapes is not None else []
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.device_time_total = 0.0
        self.self_device_time_total = 0.0
        self.is_user_annotation = False

    def add(self, event) -> FunctionEventAvg:
        self.count += event.count
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        self.device_time_total += event.device_time_total
        self.self_device_time_total += event.self_device_time_total
        self.is_user_annotation = event.is_user_annotation
        return self

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def device_time(self) -> float:
        return self.device_time_total / self.count if self.count else 0.0

    # PyTorch's older spellings of the device columns (``sort_by="cuda_time_total"``)
    cuda_time_total = property(lambda self: self.device_time_total)
    self_cuda_time_total = property(lambda self: self.self_device_time_total)

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={_format_time(self.self_cpu_time_total)} "
                f"cpu_time={_format_time(self.cpu_time)} count={self.count} input_shapes={self.input_shapes}>")


class EventList(list):
    """A list of events (or of their averages) that prints PyTorch's profiler table."""

    def __init__(self, *args, use_device: str | None = None):
        super().__init__(*args)
        self.use_device = use_device

    @property
    def self_cpu_time_total(self) -> float:
        return sum(event.self_cpu_time_total for event in self)

    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        """One ``FunctionEventAvg`` per event name (and input shapes, when ``group_by_input_shape``)."""
        groups: dict[tuple, FunctionEventAvg] = {}
        for event in self:
            key = (event.key, str(event.input_shapes)) if group_by_input_shape else (event.key,)
            if key not in groups:
                groups[key] = FunctionEventAvg(event.key, event.input_shapes if group_by_input_shape else None)
            groups[key].add(event)
        return EventList(groups.values(), use_device=self.use_device)

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total")
        for event in self:
            total.add(event)
        return total

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_src_column_width: int = 75,
              max_name_column_width: int = _MAX_NAME_WIDTH, max_shapes_column_width: int = _MAX_SHAPES_WIDTH,
              header: str | None = None, top_level_events_only: bool = False) -> str:
        """PyTorch's table: Name, Self CPU %, Self CPU, CPU total %, CPU total, CPU time avg, (the CUDA
        columns,) # of Calls and, when shapes were recorded, Input Shapes; rows sorted by ``sort_by``."""
        return _build_table(self, sort_by, row_limit, max_name_column_width, max_shapes_column_width, header,
                            top_level_events_only)

    def export_chrome_trace(self, path) -> None:
        """Write the events as Chrome trace JSON (chrome://tracing, Perfetto, TensorBoard's trace viewer)."""
        trace = []
        pid = os.getpid()
        for event in self:
            if not isinstance(event, FunctionEvent):
                raise TypeError("export_chrome_trace needs events, not key_averages()")
            trace.append({"ph": "X", "cat": "user_annotation" if event.is_user_annotation else "cpu_op",
                          "name": event.name, "pid": pid, "tid": event.thread, "ts": event.start_us,
                          "dur": event.cpu_time_total, "args": {"Input Dims": event.input_shapes}})
            if event.device_start_us is not None:
                trace.append({"ph": "X", "cat": "kernel", "name": event.name, "pid": f"{self.use_device} 0",
                              "tid": "stream", "ts": event.device_start_us, "dur": event.device_time_total,
                              "args": {"External id": event.id}})
        with open(path, "w") as file:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, file)

    def __str__(self):
        return self.table()


def _format_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _percent(part: float, whole: float) -> str:
    return f"{part * 100 / whole:.2f}%" if whole > 0 else "0.00%"


def _build_table(events, sort_by, row_limit, max_name_width, max_shapes_width, header, top_level_only) -> str:
    rows = [e for e in events if not top_level_only or getattr(e, "cpu_parent", None) is None]
    if sort_by is not None:
        if rows and not hasattr(rows[0], sort_by):
            raise ValueError(f"table: unknown sort_by {sort_by!r} (e.g. 'cpu_time_total', 'self_cpu_time_total', "
                             f"'count', 'device_time_total')")
        rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
    if row_limit is not None and row_limit > 0:
        rows = rows[:row_limit]
    with_shapes = any(e.input_shapes for e in events)
    with_device = events.use_device is not None and any(e.device_time_total for e in events)
    name_width = min(max((len(e.key) for e in rows), default=4) + 4, max_name_width)
    columns = [("Name", name_width), ("Self CPU %", _STAT_WIDTH), ("Self CPU", _STAT_WIDTH),
               ("CPU total %", _STAT_WIDTH), ("CPU total", _STAT_WIDTH), ("CPU time avg", _STAT_WIDTH)]
    device = (events.use_device or "").upper()
    if with_device:
        columns += [(f"Self {device}", _STAT_WIDTH), (f"Self {device} %", _STAT_WIDTH),
                    (f"{device} total", _STAT_WIDTH), (f"{device} time avg", _STAT_WIDTH)]
    columns.append(("# of Calls", _STAT_WIDTH))
    shapes_width = min(max((len(str(e.input_shapes)) for e in rows), default=12) + 4, max_shapes_width)
    if with_shapes:
        columns.append(("Input Shapes", shapes_width))
    line = "".join("-" * width + "  " for _, width in columns)
    fmt = "".join(f"{{:>{width}}}  " for _, width in columns)
    self_cpu_total = sum(e.self_cpu_time_total for e in events)
    self_device_total = sum(e.self_device_time_total for e in events)
    out = [header] if header else []
    out += [line, fmt.format(*(title for title, _ in columns)), line]
    for e in rows:
        name = e.key if len(e.key) <= name_width - 4 else e.key[:name_width - 7] + "..."
        cells = [name, _percent(e.self_cpu_time_total, self_cpu_total), _format_time(e.self_cpu_time_total),
                 _percent(e.cpu_time_total, self_cpu_total), _format_time(e.cpu_time_total), _format_time(e.cpu_time)]
        if with_device:
            cells += [_format_time(e.self_device_time_total), _percent(e.self_device_time_total, self_device_total),
                      _format_time(e.device_time_total), _format_time(e.device_time)]
        cells.append(str(e.count))
        if with_shapes:
            shapes = str(e.input_shapes)
            cells.append(shapes if len(shapes) <= shapes_width - 4 else shapes[:shapes_width - 7] + "...")
        out.append(fmt.format(*cells))
    out.append(line)
    out.append(f"Self CPU time total: {_format_time(self_cpu_total)}")
    if with_device:
        out.append(f"Self {device} time total: {_format_time(self_device_total)}")
    return "\n".join(out) + "\n"


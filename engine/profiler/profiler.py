"""``engine.profiler.profile``: PyTorch's profiler context manager, its ``schedule`` and trace handlers."""

from __future__ import annotations

import contextlib
import enum
import gzip
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterable

from engine.fx._state import STATE
from engine.profiler.events import EventList
from engine.profiler.recorder import Recorder


class ProfilerActivity(enum.Enum):
    """What to record: ``CPU`` (op calls and ranges on the host) and ``CUDA`` (their time on the device)."""

    CPU = 0
    CUDA = 2


class ProfilerAction(enum.Enum):
    """What a schedule asks of a step."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def supported_activities() -> set[ProfilerActivity]:
    """CPU, plus CUDA where CuPy sees a GPU."""
    from engine import cuda

    return {ProfilerActivity.CPU, ProfilerActivity.CUDA} if cuda.is_available() else {ProfilerActivity.CPU}


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0) -> Callable[[int], ProfilerAction]:
    """PyTorch's schedule: skip ``skip_first`` steps, then cycles of ``wait`` idle, ``warmup`` and ``active``
    recorded steps (the last one saves), ``repeat`` times (0 = for ever)."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise ValueError(f"Invalid profiler schedule arguments. Got wait={wait} (need >= 0), warmup={warmup} "
                         f"(need >= 0), active={active} (need > 0), repeat={repeat} (need >= 0), "
                         f"skip_first={skip_first} (need >= 0).")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results", stacklevel=2)

    def schedule_fn(step: int) -> ProfilerAction:
        if step < 0:
            raise ValueError(f"Step must be non-negative. Got {step}.")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        cycle = wait + warmup + active
        if repeat > 0 and step / cycle >= repeat:
            return ProfilerAction.NONE
        mod = step % cycle
        if mod < wait:
            return ProfilerAction.NONE
        if mod < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if mod < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return schedule_fn


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None, use_gzip: bool = False):
    """An ``on_trace_ready`` that writes ``<worker>.<time>.pt.trace.json[.gz]`` under ``dir_name`` (TensorBoard's
    profile plugin reads that folder)."""

    def handler(prof: profile) -> None:
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        path = os.path.join(dir_name, f"{worker}.{time.time_ns()}.pt.trace.json")
        prof.export_chrome_trace(path)
        if use_gzip:
            with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
                dst.write(src.read())
            os.remove(path)

    return handler


class record_function(contextlib.ContextDecorator):
    """A named range in the profile (a ``with`` block or a decorated function); ops inside are its children.

    Example:
        >>> with engine.profiler.profile() as prof:
        ...     with engine.profiler.record_function("forward"):
        ...         y = engine.ones(3).relu()
    """

    def __init__(self, name: str, args: str | None = None):
        if not isinstance(name, str):
            raise TypeError(f"record_function: name must be a str, got {type(name).__name__}")
        self.name = name
        self.args = args
        self._recorder = None
        self._event = None

    def __enter__(self):
        recorder = STATE.profiler
        if recorder is not None:
            self._recorder, self._event = recorder, recorder.open(self.name, user_annotation=True)
        return self

    def __exit__(self, *exc):
        if self._recorder is not None:
            self._recorder.close(self._event)
            self._recorder = self._event = None
        return False


class profile:
    """Record every engine op call (as ``engine::<op>``) and ``record_function`` range while active, as
    ``torch.profiler.profile``.

    ``schedule`` decides per ``step()`` whether to record; when a recorded cycle ends (and at exit while
    recording) ``on_trace_ready(prof)`` runs. ``profile_memory``, ``with_stack``, ``with_flops`` and
    ``with_modules`` are accepted as PyTorch's and record nothing more here.

    Example:
        >>> with engine.profiler.profile(record_shapes=True) as prof:
        ...     engine.ones(2, 3).relu().sum()
        >>> print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    """

    def __init__(self, *, activities: Iterable[ProfilerActivity] | None = None,
                 schedule: Callable[[int], ProfilerAction] | None = None, on_trace_ready: Callable | None = None,
                 record_shapes: bool = False, profile_memory: bool = False, with_stack: bool = False,
                 with_flops: bool = False, with_modules: bool = False, **kwargs):
        unknown = set(kwargs) - {"experimental_config", "execution_trace_observer", "acc_events", "use_cuda",
                                 "custom_trace_id_callback", "post_processing_timeout_s"}
        if unknown:
            raise TypeError(f"profile() got unexpected keyword arguments {sorted(unknown)}")
        chosen = set(activities) if activities is not None else supported_activities()
        if kwargs.get("use_cuda"):
            chosen.add(ProfilerActivity.CUDA)
        bad = [a for a in chosen if not isinstance(a, ProfilerActivity)]
        if bad:
            raise TypeError(f"profile: activities must be ProfilerActivity members, got {bad!r}")
        if schedule is not None and not callable(schedule):
            raise TypeError("profile: schedule must be a callable step -> ProfilerAction (see engine.profiler.schedule)")
        self.activities = chosen
        self.schedule = schedule or _always_record
        self.record_steps = schedule is not None
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory, self.with_stack, self.with_flops, self.with_modules = (
            profile_memory, with_stack, with_flops, with_modules)
        self.step_num = 0
        self.current_action = ProfilerAction.NONE
        self.profiler: EventList | None = None  # the last finished window's events
        self._recorder: Recorder | None = None
        self._step_range: record_function | None = None

    # --- the context manager ---------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self) -> None:
        self.step_num = 0
        self.current_action = self.schedule(0)
        self._apply(ProfilerAction.NONE, self.current_action)
        self._open_step()

    def stop(self) -> None:
        self._close_step()
        self._apply(self.current_action, None)

    def step(self) -> None:
        """Mark a training step's end; the schedule decides what the next one records."""
        self._close_step()
        previous = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        self._apply(previous, self.current_action)
        self._open_step()

    # --- results ---------------------------------------------------------------------------------
    def events(self) -> EventList:
        """Every event of the last recorded window (ops and ranges, in the order they opened)."""
        if self.profiler is None:
            raise RuntimeError("profiler: no events yet (the profile is still recording or recorded no step)")
        return self.profiler

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        """The events grouped by name (and input shapes): counts, totals and self times, for ``table()``."""
        if group_by_input_shape and not self.record_shapes:
            raise ValueError("key_averages(group_by_input_shape=True) needs profile(record_shapes=True)")
        return self.events().key_averages(group_by_input_shape=group_by_input_shape)

    def export_chrome_trace(self, path) -> None:
        """Write the last window's events as Chrome trace JSON."""
        self.events().export_chrome_trace(path)

    # --- the schedule's transitions --------------------------------------------------------------
    def _apply(self, previous: ProfilerAction, current: ProfilerAction | None) -> None:
        recording = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)
        if previous in recording and (previous is ProfilerAction.RECORD_AND_SAVE or current not in recording):
            self._finish()
        if current in recording and self._recorder is None:
            self._begin()

    def _begin(self) -> None:
        if STATE.profiler is not None:
            raise RuntimeError("profiler: another profile is already recording")
        cupy = None
        if ProfilerActivity.CUDA in self.activities:
            from engine import cuda

            if cuda.is_available():
                from engine.cuda._lazy import cupy as get_cupy

                cupy = get_cupy()
        self._recorder = Recorder(record_shapes=self.record_shapes, cupy=cupy)
        STATE.profiler = self._recorder

    def _finish(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        STATE.profiler = None
        use_device = "cuda" if recorder._cupy is not None else None
        self.profiler = recorder.finish(use_device)
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _open_step(self) -> None:
        if self.record_steps and self._recorder is not None:
            self._step_range = record_function(f"ProfilerStep#{self.step_num}").__enter__()

    def _close_step(self) -> None:
        if self._step_range is not None:
            self._step_range.__exit__(None, None, None)
            self._step_range = None

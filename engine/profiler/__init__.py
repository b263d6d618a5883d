"""``engine.profiler``: where time goes, as ``torch.profiler``.

Every engine op call is an event named ``engine::<op>`` (the op registry's wrapper opens it, so one check
of ``engine.fx._state.STATE.profiler`` is all an op pays when nothing profiles); ``record_function`` adds
named ranges. ``key_averages().table()`` prints PyTorch's table, ``export_chrome_trace`` writes Chrome trace
JSON, ``schedule`` and ``tensorboard_trace_handler`` drive long runs.

Example:
    >>> import engine
    >>> from engine.profiler import ProfilerActivity, profile, record_function
    >>> with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    ...     with record_function("model_inference"):
    ...         engine.nn.Linear(4, 2)(engine.randn(3, 4)).relu()
    >>> print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
"""

from engine.profiler.events import EventList, FunctionEvent, FunctionEventAvg
from engine.profiler.profiler import (
    ProfilerAction,
    ProfilerActivity,
    profile,
    record_function,
    schedule,
    supported_activities,
    tensorboard_trace_handler,
)

__all__ = [
    "EventList",
    "FunctionEvent",
    "FunctionEventAvg",
    "ProfilerAction",
    "ProfilerActivity",
    "profile",
    "record_function",
    "schedule",
    "supported_activities",
    "tensorboard_trace_handler",
]

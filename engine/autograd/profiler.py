"""``engine.autograd.profiler``: PyTorch's older profiler spelling (``torch.autograd.profiler.profile``), the same
recorder as ``engine.profiler.profile`` without a schedule."""

from __future__ import annotations

from engine.profiler import EventList, FunctionEvent, FunctionEventAvg, ProfilerActivity, record_function
from engine.profiler import profile as _profile

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "profile", "record_function"]


class profile:
    """Record engine ops while active (``enabled=False`` records nothing); read ``function_events`` or
    ``key_averages().table()`` after the block."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device: str | None = None,
                 record_shapes: bool = False, with_flops: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_modules: bool = False, use_kineto: bool = False,
                 use_cpu: bool = True, **kwargs):
        if use_device not in (None, "cuda"):
            raise ValueError(f"autograd.profiler.profile: use_device must be None or 'cuda', got {use_device!r}")
        activities = {ProfilerActivity.CPU} if use_cpu else set()
        if use_cuda or use_device == "cuda":
            activities.add(ProfilerActivity.CUDA)
        self.enabled = enabled
        self.function_events: EventList | None = None
        self._profile = _profile(activities=activities, record_shapes=record_shapes, with_flops=with_flops,
                                 profile_memory=profile_memory, with_stack=with_stack, with_modules=with_modules,
                                 **kwargs)

    def __enter__(self):
        if self.enabled:
            self._profile.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._profile.stop()
            self.function_events = self._profile.events()
        return False

    def _events(self) -> EventList:
        if self.function_events is None:
            raise RuntimeError("Profiler didn't finish running")
        return self.function_events

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        return self._events().key_averages(group_by_input_shape=group_by_input_shape)

    def table(self, sort_by: str | None = None, row_limit: int = 100, **kwargs) -> str:
        return self._events().table(sort_by=sort_by, row_limit=row_limit, **kwargs)

    def export_chrome_trace(self, path) -> None:
        self._events().export_chrome_trace(path)

    def total_average(self) -> FunctionEventAvg:
        return self._events().total_average()

    @property
    def self_cpu_time_total(self) -> float:
        return self._events().self_cpu_time_total

    def __str__(self):
        return self.table()


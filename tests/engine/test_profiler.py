"""engine.profiler as torch.profiler: every op call is an ``engine::`` event with exact nesting and self times,
record_function ranges, PyTorch's table, schedules, Chrome traces, and nothing recorded when not profiling."""

from __future__ import annotations

import gzip
import json
import warnings

import pytest

import engine
from engine import nn
from engine.fx._state import STATE
from engine.profiler import (
    ProfilerAction,
    ProfilerActivity,
    profile,
    record_function,
    schedule,
    tensorboard_trace_handler,
)


def _model():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _counts(prof):
    return {avg.key: avg.count for avg in prof.key_averages()}


def test_table_lists_the_ops_of_a_model_with_their_call_counts():
    model, x = _model(), engine.randn(5, 4)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            model(x).sum()
    counts = _counts(prof)
    assert counts["engine::linear"] == 6 and counts["engine::relu"] == 3 and counts["engine::sum"] == 3
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=10)
    header = table.splitlines()[1].split()
    assert " ".join(header) == "Name Self CPU % Self CPU CPU total % CPU total CPU time avg # of Calls"
    rows = table.splitlines()[3:-2]
    assert [r.split()[0] for r in rows][:1] == [max(prof.key_averages(), key=lambda a: a.cpu_time_total).key]
    assert any(r.split()[0] == "engine::linear" and r.split()[-1] == "6" for r in rows)
    assert table.rstrip().splitlines()[-1].startswith("Self CPU time total: ")
    assert len(prof.key_averages().table(sort_by="count", row_limit=1).splitlines()) == 6


def test_self_time_excludes_children_and_never_exceeds_total():
    with profile() as prof, record_function("outer"):
        engine.nn.functional.softmax(engine.randn(8, 8), dim=-1).sum()
    for event in prof.events():
        children = sum(c.cpu_time_total for c in event.cpu_children)
        assert event.self_cpu_time_total == pytest.approx(event.cpu_time_total - children)
        assert 0 <= event.self_cpu_time_total <= event.cpu_time_total
    for avg in prof.key_averages():
        assert avg.self_cpu_time_total <= avg.cpu_time_total + 1e-9
    outer = next(e for e in prof.events() if e.name == "outer")
    assert outer.cpu_parent is None and {c.name for c in outer.cpu_children} >= {"engine::softmax", "engine::sum"}


def test_record_function_nests_and_decorates():
    @record_function("helper")
    def helper(t):
        return t.relu()

    with profile() as prof:
        with record_function("outer"):
            with record_function("inner"):
                helper(engine.ones(3))
    by_name = {e.name: e for e in prof.events()}
    assert by_name["inner"].cpu_parent is by_name["outer"]
    assert by_name["helper"].cpu_parent is by_name["inner"]
    assert by_name["engine::relu"].cpu_parent is by_name["helper"]
    assert by_name["outer"].is_user_annotation and not by_name["engine::relu"].is_user_annotation
    assert by_name["outer"].cpu_time_total >= by_name["inner"].cpu_time_total >= by_name["helper"].cpu_time_total


def test_schedule_matches_torch(torch):
    for kwargs in ({"wait": 1, "warmup": 1, "active": 2}, {"wait": 0, "warmup": 0, "active": 1, "repeat": 2},
                   {"wait": 2, "warmup": 1, "active": 3, "repeat": 1, "skip_first": 2},
                   {"wait": 3, "warmup": 0, "active": 1, "skip_first": 1, "skip_first_wait": 1}):
        with warnings.catch_warnings(record=True) as ours_warned:
            warnings.simplefilter("always")
            ours = schedule(**kwargs)
        with warnings.catch_warnings(record=True) as torch_warned:
            warnings.simplefilter("always")
            theirs = torch.profiler.schedule(**kwargs)
        assert [str(w.message) for w in ours_warned] == [str(w.message) for w in torch_warned]
        assert [ours(s).name for s in range(20)] == [theirs(s).name for s in range(20)], kwargs
    with pytest.raises(ValueError, match="active=0"):
        schedule(wait=1, warmup=1, active=0)


def test_schedule_records_only_active_steps_and_calls_on_trace_ready():
    ready = []
    x = engine.ones(2)
    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=1),
                 on_trace_ready=lambda p: ready.append(p.events())) as prof:
        for step in range(6):
            for _ in range(step + 1):  # step k runs relu k+1 times
                x.relu()
            prof.step()
    assert prof.current_action is ProfilerAction.NONE
    assert len(ready) == 1
    names = [e.name for e in ready[0]]
    assert [n for n in names if n.startswith("ProfilerStep#")] == ["ProfilerStep#2", "ProfilerStep#3"]
    assert names.count("engine::relu") == 3 + 4
    step2 = next(e for e in ready[0] if e.name == "ProfilerStep#2")
    assert [c.name for c in step2.cpu_children] == ["engine::relu"] * 3


def test_chrome_trace_is_json_with_the_events(tmp_path):
    with profile(record_shapes=True) as prof, record_function("block"):
        engine.matmul(engine.ones(2, 3), engine.ones(3, 4))
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())["traceEvents"]
    matmul = next(e for e in trace if e["name"] == "engine::matmul")
    assert matmul["ph"] == "X" and matmul["cat"] == "cpu_op" and matmul["dur"] >= 0
    assert matmul["args"]["Input Dims"] == [[2, 3], [3, 4]]
    assert next(e for e in trace if e["name"] == "block")["cat"] == "user_annotation"


def test_tensorboard_trace_handler_writes_a_trace_per_window(tmp_path):
    with pytest.warns(UserWarning, match="warmup"):
        every_step = schedule(wait=0, warmup=0, active=1, repeat=2)
    with profile(schedule=every_step,
                 on_trace_ready=tensorboard_trace_handler(str(tmp_path / "tb"), worker_name="w0", use_gzip=True)) as p:
        for _ in range(3):
            engine.ones(2).exp()
            p.step()
    files = sorted((tmp_path / "tb").iterdir())
    assert len(files) == 2 and all(f.name.startswith("w0.") and f.name.endswith(".pt.trace.json.gz") for f in files)
    names = [e["name"] for e in json.loads(gzip.decompress(files[0].read_bytes()))["traceEvents"]]
    assert "engine::exp" in names


def test_record_shapes_adds_the_input_shapes_column_and_grouping():
    with profile(record_shapes=True) as prof:
        engine.ones(2, 3).relu()
        engine.ones(4).relu()
    grouped = prof.key_averages(group_by_input_shape=True)
    assert sorted(a.input_shapes for a in grouped if a.key == "engine::relu") == [[[2, 3]], [[4]]]
    table = grouped.table(sort_by="self_cpu_time_total")
    assert "Input Shapes" in table.splitlines()[1] and "[[2, 3]]" in table
    with profile() as plain:
        engine.ones(2).relu()
    assert "Input Shapes" not in plain.key_averages().table()
    with pytest.raises(ValueError, match="record_shapes"):
        plain.key_averages(group_by_input_shape=True)


def test_nothing_is_recorded_when_not_profiling():
    with profile() as prof:
        engine.ones(2).relu()
    recorded = len(prof.events())
    assert STATE.profiler is None
    with record_function("outside"):
        engine.ones(2).relu().sum()
    _model()(engine.randn(1, 4))
    assert len(prof.events()) == recorded and "outside" not in {e.name for e in prof.events()}


def test_bad_arguments_are_refused_and_leave_nothing_recording():
    with pytest.raises(TypeError, match="ProfilerActivity"):
        profile(activities=["cpu"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        profile(record_shape=True)
    with pytest.raises(TypeError, match="str"):
        record_function(3)
    with profile(), pytest.raises(RuntimeError, match="already recording"):
        with profile():
            pass
    assert STATE.profiler is None
    with pytest.raises(RuntimeError, match="no events"):
        profile().events()


def test_autograd_profiler_aliases():
    with engine.autograd.profiler.profile(record_shapes=True) as prof:
        with engine.autograd.profiler.record_function("r"):
            engine.ones(3).tanh()
    assert {"r", "engine::tanh"} <= {e.name for e in prof.function_events}
    assert "engine::tanh" in prof.key_averages().table(sort_by="cpu_time_total")
    with engine.autograd.profiler.profile(enabled=False) as off:
        engine.ones(3).tanh()
    with pytest.raises(RuntimeError, match="didn't finish"):
        off.key_averages()


@pytest.mark.gpu
@pytest.mark.usefixtures("cuda_backend")
def test_cuda_activity_times_ops_on_the_device(tmp_path):
    x = engine.randn(16, 16, device="cuda")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        (x @ x).relu()
    matmul = next(e for e in prof.events() if e.name == "engine::matmul")
    assert matmul.device_time_total >= 0 and matmul.device_start_us is not None
    prof.export_chrome_trace(str(tmp_path / "t.json"))
    kernels = [e for e in json.loads((tmp_path / "t.json").read_text())["traceEvents"] if e["cat"] == "kernel"]
    assert {"engine::matmul", "engine::relu"} <= {e["name"] for e in kernels}

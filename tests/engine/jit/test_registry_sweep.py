"""Every op in the op table traces, and its graph replays equal to eager (the registry sweep)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from op_table import OPS, Case
from test_op_table import _draw

import engine
from engine.fx import registry


def _flat(value):
    if isinstance(value, tuple | list):
        return [x for v in value for x in _flat(v)]
    return [value]


@pytest.mark.parametrize("case", OPS, ids=[c.name for c in OPS])
def test_op_traces_and_replays_equal_to_eager(case: Case):
    inputs = [engine.tensor(a) if a.dtype.kind != "f" else engine.tensor(a.astype(np.float32)) for a in _draw(case)]
    fn = lambda *ts: case.fn(engine, *ts)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", engine.jit.TracerWarning)  # data-dependent ops (nonzero ...) warn
        engine.manual_seed(0)
        traced = engine.jit.trace(fn, tuple(inputs), check_trace=False, strict=False)
    engine.manual_seed(0)
    expected = fn(*inputs)
    engine.manual_seed(0)
    got = traced(*inputs)
    for e, g in zip(_flat(expected), _flat(got), strict=True):
        if isinstance(e, engine.Tensor):
            np.testing.assert_allclose(g.detach().numpy(), e.detach().numpy(), rtol=1e-6, atol=1e-7)
        else:
            assert e == g
    calls = [n for n in traced.graph.nodes if n.op == "call_function"]
    assert all(registry.of(n.target) is not None or n.op_name.endswith(".apply") for n in calls)


def test_every_registered_op_has_its_kernel_and_a_slot_for_later_layers():
    assert len(registry.REGISTRY) > 300
    for name, entry in registry.REGISTRY.items():
        assert entry.name == name and callable(entry.fn) and callable(entry.call)
        assert hasattr(entry, "onnx") and hasattr(entry, "quantized")
    assert registry.lookup("engine.nn.functional.linear").fn.__module__ == "engine.ops.linear"
    with pytest.raises(RuntimeError, match=r"unknown op 'engine\.no_such_op'"):
        registry.lookup("engine.no_such_op")


def test_another_spelling_of_an_op_is_an_alias_and_never_renames_it():
    import engine.nn.functional as F

    assert engine.conv2d is F.conv2d and engine.unsafe_split is engine.split
    assert registry.of(engine.conv2d).name == "engine.nn.functional.conv2d"
    assert registry.of(engine.split).name == "engine.split"
    assert registry.lookup("engine.conv2d") is registry.lookup("engine.nn.functional.conv2d")
    assert "engine.conv2d" not in registry.REGISTRY and "engine.conv2d" in registry.ALIASES
    x = engine.randn(1, 2, 5, 5)
    w = engine.randn(3, 2, 3, 3)
    traced = engine.jit.trace(lambda a: engine.conv2d(a, w).split(1, dim=1)[0], (x,))
    names = [n.op_name for n in traced.graph.nodes if n.op == "call_function"]
    assert "engine.nn.functional.conv2d" in names and not any(n.startswith("engine.unsafe") for n in names)

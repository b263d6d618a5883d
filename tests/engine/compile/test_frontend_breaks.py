"""Graph breaks, fullgraph=True and engine._dynamo.explain."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine import _dynamo
from engine.fx.graph import target_name


def close(a, b, tol=1e-12):
    return np.allclose(a.detach().numpy(), b.detach().numpy(), atol=tol, rtol=tol)


def branchy(x):
    y = x.sin() * 2
    if y.sum().item() > 0:  # a Python value read from a tensor: the graph breaks here
        return y.exp()
    return y.cos() - 1


def test_data_dependent_python_runs_eagerly_and_stays_right():
    cf = engine.compile(branchy, backend="eager")
    for sign in (1, -1, 1, -1):
        x = engine.full((4,), 0.5 * sign)
        assert close(cf(x), branchy(x))


@pytest.mark.parametrize("convert", [lambda t: t.item(), lambda t: bool(t > 0), lambda t: t.numpy().sum(),
                                     lambda t: float(t), lambda t: t.tolist()])
def test_each_python_conversion_is_a_graph_break(convert):
    def f(x):
        s = x.sum()
        convert(s)
        return x + 1

    report = _dynamo.explain(f)(engine.randn(3))
    assert report.graph_break_count == 1
    assert "Tensor data read in Python" in report.break_reasons[0].reason


def test_fullgraph_raises_unsupported_naming_the_reason():
    cf = engine.compile(branchy, backend="eager", fullgraph=True)
    with pytest.raises(_dynamo.exc.Unsupported, match="Python number"):
        cf(engine.randn(4))


def test_fullgraph_accepts_a_graph_without_breaks():
    cf = engine.compile(lambda x: (x * x).sum(), backend="eager", fullgraph=True)
    x = engine.randn(3)
    assert close(cf(x), (x * x).sum())


def test_autograd_grad_and_tensor_hooks_break_the_graph():
    def uses_grad(x):
        y = (x * x).sum()
        (g,) = engine.autograd.grad(y, x)
        return g * 2

    def uses_hook(x):
        y = x * 3
        y.register_hook(lambda g: g * 2)
        return y.sum()

    for fn in (uses_grad, uses_hook):
        report = _dynamo.explain(fn)(engine.randn(3, requires_grad=True))
        assert report.graph_break_count == 1
    cf = engine.compile(uses_grad, backend="eager")
    x = engine.randn(3, requires_grad=True)
    for _ in range(2):
        assert close(cf(x), 4 * x)


def test_compiler_disable_runs_a_function_eagerly_as_a_break():
    @engine.compiler.disable
    def helper(x):
        return x * 10

    def f(x):
        return helper(x + 1) - 1

    report = _dynamo.explain(f)(engine.randn(2))
    assert report.graph_break_count == 1 and "disable" in report.break_reasons[0].reason
    cf = engine.compile(f, backend="eager")
    x = engine.randn(2)
    assert close(cf(x), f(x)) and close(cf(x), f(x))


def test_explain_without_breaks():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    report = _dynamo.explain(model)(engine.randn(2, 3))
    assert report.graph_count == 1 and report.graph_break_count == 0 and report.break_reasons == []
    assert report.op_count == len(report.ops_per_graph[0]) == 2
    assert isinstance(report.graphs[0], engine.fx.GraphModule)
    assert any(g.guard_type == "TENSOR_MATCH" for g in report.out_guards)
    assert "Graph Count: 1" in str(report)


def test_explain_splits_at_the_break():
    report = _dynamo.explain(branchy)(engine.full((4,), 0.5))
    assert report.graph_count == 2 and report.graph_break_count == 1
    assert report.break_reasons[0].user_stack and report.break_reasons[0].user_stack[-1].name == "branchy"
    first, second = report.ops_per_graph
    assert [target_name(t) for t in first][:2] == ["engine.sin", "Tensor.__mul__"]
    assert {"engine.exp", "Tensor.exp"} & {target_name(t) for t in second}
    assert report.op_count == len(first) + len(second)
    text = str(report)
    assert "Graph Break Count: 1" in text and "Break Reason 1" in text


def test_explain_deprecated_call_form_warns():
    with pytest.warns(FutureWarning):
        report = _dynamo.explain(branchy, engine.randn(4))
    assert report.graph_break_count == 1

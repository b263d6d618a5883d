"""Graph IR printing, dead-code elimination, constant folding, symbolic sizes and TracerWarnings."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.fx import Graph, GraphModule, constant_fold, dead_code_elimination


def test_dead_code_elimination_removes_unused_pure_nodes_only():
    g = Graph()
    x = g.placeholder("x")
    used = g.call_function(engine.relu, (x,))
    g.call_function(engine.exp, (x,))  # unused: removed
    g.call_function(engine.Tensor.add_, (x, 1.0))  # in-place: kept
    g.output(used)
    assert dead_code_elimination(g) == 1
    assert [n.op_name for n in g.nodes] == ["x", "engine.relu", "Tensor.add_", "output"]
    assert "%relu : [num_users=1] = call_function[target=engine.relu]" in str(g)


def test_constant_folding_evaluates_constant_subgraphs_once():
    traced = engine.jit.trace(lambda x: x + engine.ones(3) * 2 + engine.arange(3), engine.randn(4, 3))
    before = len(traced.graph)
    assert constant_fold(traced) == 3  # ones, mul, arange
    assert len(traced.graph) < before
    assert not any(n.op_name in ("engine.ones", "engine.arange") for n in traced.graph.nodes)
    x = engine.randn(6, 3)
    np.testing.assert_allclose(traced(x).numpy(), (x + 2 + engine.arange(3)).numpy())
    assert len(traced.constants) == 2  # ones(3) * 2 and arange(3)


def test_sizes_stay_symbolic_and_print_as_code():
    def f(x):
        b = x.shape[0]
        return x.view(b, x.size(1) * 2, -1).sum(-1) + x.new_zeros(b, 1)

    traced = engine.jit.trace(f, engine.randn(4, 3, 6))
    assert "x.size(0)" in traced.code and "size_3 * 2" in traced.code
    x = engine.randn(7, 3, 6)
    np.testing.assert_allclose(traced(x).numpy(), f(x).numpy(), rtol=1e-6)


def test_data_dependent_control_flow_warns_naming_the_module():
    class Gate(engine.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    model = engine.nn.Sequential(engine.nn.Linear(3, 3), Gate())
    with pytest.warns(engine.jit.TracerWarning, match=r"Python boolean.*in module '1' \(Gate\)"):
        engine.jit.trace(model, engine.randn(2, 3), check_trace=False)
    with pytest.warns(engine.jit.TracerWarning, match="Python number"):
        engine.jit.trace(lambda x: x * x.max().item(), engine.randn(3))


def test_strict_refuses_list_outputs_and_script_points_to_trace():
    with pytest.raises(RuntimeError, match="list at the output of the tracer"):
        engine.jit.trace(lambda x: [x, x * 2], engine.randn(2))
    traced = engine.jit.trace(lambda x: [x, x * 2], engine.randn(2), strict=False)
    assert isinstance(traced(engine.ones(2)), list)
    with pytest.raises(NotImplementedError, match=r"engine.jit.trace\(model, example_inputs\)"):
        engine.jit.script(engine.nn.Linear(2, 2))


def test_in_place_ops_and_custom_functions_are_recorded():
    class Double(engine.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    def f(x):
        y = x.clone()
        y[:, 0] = 0.0
        y.add_(1.0)
        return Double.apply(y)

    traced = engine.jit.trace(f, engine.randn(3, 2))
    x = engine.randn(5, 2)
    np.testing.assert_allclose(traced(x).numpy(), f(x).numpy())
    assert any(n.op_name.endswith("Double.apply") for n in traced.graph.nodes)


def test_graph_module_runs_a_hand_built_graph():
    g = Graph()
    x = g.placeholder("x")
    w = g.get_attr("lin.weight")
    g.output(g.call_function(engine.matmul, (x, g.call_function(engine.Tensor.t, (w,)))))
    gm = GraphModule({"lin.weight": engine.nn.Parameter(engine.eye(2))}, g)
    assert gm(engine.ones(1, 2)).tolist() == [[1.0, 1.0]]
    assert list(gm.state_dict()) == ["lin.weight"]
    g.lint()


def test_freeze_inlines_weights_and_folds_weight_only_subgraphs():
    class Scaled(engine.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = engine.nn.Parameter(engine.randn(3, 4))

        def forward(self, x):
            return x @ (self.w * 2).t()

    model = Scaled().eval()
    traced = engine.jit.trace(model, engine.randn(2, 4))
    with pytest.raises(RuntimeError, match="eval mode"):
        engine.jit.freeze(engine.jit.trace(Scaled(), engine.randn(2, 4)))
    frozen = engine.jit.freeze(traced)
    assert list(frozen.state_dict()) == [] and len(frozen.constants) == 1
    assert [n.op_name for n in frozen.graph.nodes if n.op == "call_function"] == ["engine.matmul"]
    x = engine.randn(5, 4)
    np.testing.assert_allclose(frozen(x).detach().numpy(), model(x).detach().numpy(), rtol=1e-6)


def test_nested_inputs_keyword_inputs_and_tuple_outputs():
    class Cell(engine.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = engine.nn.Linear(3, 3)

        def forward(self, x, state, scale=None):
            h, c = state
            h = self.lin(x) + h * scale
            return h, (h, c + 1)

    cell = Cell()
    x, h, c, s = engine.randn(4, 3), engine.randn(4, 3), engine.randn(4, 3), engine.randn(4, 3)
    traced = engine.jit.trace(cell, (x, (h, c)), example_kwarg_inputs={"scale": s})
    x, h, c, s = engine.randn(6, 3), engine.randn(6, 3), engine.randn(6, 3), engine.randn(6, 3)
    got, expected = traced(x, (h, c), scale=s), cell(x, (h, c), scale=s)
    assert isinstance(got, tuple) and isinstance(got[1], tuple)
    for g, e in zip((got[0], *got[1]), (expected[0], *expected[1]), strict=True):
        np.testing.assert_allclose(g.detach().numpy(), e.detach().numpy(), rtol=1e-6)


def test_check_trace_warns_when_the_trace_does_not_reproduce_the_function():
    model = engine.nn.Sequential(engine.nn.Linear(8, 8), engine.nn.Dropout(0.5)).train()
    with pytest.warns(engine.jit.TracerWarning, match="does not match the corresponding output"):
        engine.jit.trace(model, engine.randn(16, 8))
    traced = engine.jit.trace(model.eval(), engine.randn(16, 8), check_inputs=[(engine.randn(3, 8),)])
    assert engine.jit.is_tracing() is False and traced(engine.randn(2, 8)).shape == (2, 8)


def test_a_tensor_held_outside_parameters_and_buffers_becomes_a_constant():
    class Shift(engine.nn.Module):
        def __init__(self):
            super().__init__()
            self.offset = engine.tensor([1.0, -2.0, 3.0])  # a plain attribute: neither parameter nor buffer

        def forward(self, x):
            return x + self.offset

    model = Shift()
    traced = engine.jit.trace(model, engine.randn(2, 3))
    assert [n.target for n in traced.graph.nodes if n.op == "get_attr"] == ["_tensor_constant0"]
    x = engine.randn(5, 3)
    assert engine.equal(traced(x), model(x))
    model.offset.zero_()  # the trace holds a copy, taken when it was recorded
    assert not engine.equal(traced(x), model(x))

"""engine.compile's front end: the entry point, OptimizedModule, backends, guards and the cache."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine import _dynamo


def close(a, b, tol=1e-12):
    return np.allclose(a.detach().numpy(), b.detach().numpy(), atol=tol, rtol=tol)


class Recorder:
    """A custom backend that counts compilations and runs the graph as it is."""

    def __init__(self):
        self.graphs = []
        self.examples = []

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        self.examples.append(example_inputs)
        return gm.forward


def test_compiled_function_equals_eager_and_replays_without_recapturing():
    rec = Recorder()

    def f(x, y):
        return (x * 2 + y).relu().sum(1)

    cf = engine.compile(f, backend=rec)
    x, y = engine.randn(3, 4), engine.randn(3, 4)
    assert close(cf(x, y), f(x, y))
    x2, y2 = engine.randn(3, 4), engine.randn(3, 4)
    assert close(cf(x2, y2), f(x2, y2))
    assert len(rec.graphs) == 1
    assert isinstance(rec.graphs[0], engine.fx.GraphModule)
    assert [tuple(t.shape) for t in rec.examples[0]] == [(3, 4), (3, 4)]
    assert cf.__name__ == "f" and cf._torchdynamo_orig_callable is f


def test_decorator_with_and_without_arguments():
    @engine.compile
    def f(x):
        return x.sin()

    @engine.compile(backend="eager", fullgraph=True)
    def g(x):
        return x.cos()

    x = engine.randn(5)
    assert close(f(x), x.sin()) and close(g(x), x.cos())


def test_optimized_module_wraps_forwards_attributes_and_prefixes_state_dict():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = engine.compile(model, backend="eager")
    assert isinstance(opt, _dynamo.OptimizedModule) and isinstance(opt, nn.Module)
    assert opt._orig_mod is model
    model.note = "kept"
    assert opt.note == "kept"  # attributes come from the original module
    assert engine.compile(nn.Linear(4, 3), backend="eager").out_features == 3
    assert list(opt.state_dict()) == [f"_orig_mod.{k}" for k in model.state_dict()]
    assert [id(p) for p in opt.parameters()] == [id(p) for p in model.parameters()]
    x = engine.randn(3, 4)
    assert close(opt(x), model(x))
    opt.eval()
    assert not model.training and not opt.training
    opt.train()
    assert model.training and opt.training
    fresh = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    wrapped = engine.compile(fresh, backend="eager")
    wrapped.load_state_dict(opt.state_dict())
    assert close(wrapped(x), model(x))


def test_module_compile_in_place_keeps_state_dict_keys():
    model = nn.Linear(3, 2)
    keys = list(model.state_dict())
    x = engine.randn(4, 3)
    expected = model(x)
    model.compile(backend="eager")
    assert list(model.state_dict()) == keys
    assert close(model(x), expected)
    assert close(model(x), expected)


def test_disable_returns_the_model_and_bad_arguments_are_refused():
    model = nn.Linear(2, 2)
    assert engine.compile(model, disable=True) is model
    with pytest.raises(_dynamo.exc.InvalidBackend, match="no_such_backend"):
        engine.compile(model, backend="no_such_backend")
    with pytest.raises(RuntimeError, match="Either mode or options"):
        engine.compile(model, mode="max-autotune", options={"x": 1})
    with pytest.raises(RuntimeError, match="Unrecognized mode"):
        engine.compile(model, mode="fastest")
    with pytest.raises(RuntimeError, match="callable"):
        engine.compile(42)


def test_backends_are_listed_and_looked_up():
    assert "inductor" in _dynamo.list_backends()
    assert {"eager", "aot_eager"} <= set(_dynamo.list_backends(exclude_tags=()))
    from engine._dynamo import backends

    assert _dynamo.lookup_backend("eager") is backends.eager

    def mine(gm, example_inputs):
        return gm.forward

    _dynamo.register_backend(mine, name="kiln_test_backend")
    f = engine.compile(lambda x: x + 1, backend="kiln_test_backend")
    assert close(f(engine.ones(2)), engine.full((2,), 2.0))


@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor"])
def test_named_backends_agree_with_eager(backend):
    def f(x, w):
        return ((x @ w).tanh() * 0.5 + x.sum(1, keepdim=True)).exp().mean(0)

    cf = engine.compile(f, backend=backend)
    for _ in range(2):
        x, w = engine.randn(6, 5, dtype=engine.float64), engine.randn(5, 5, dtype=engine.float64)
        assert close(cf(x, w), f(x, w), 1e-10)


# ----- guards and the cache ------------------------------------------------------------------------
def test_shape_dtype_and_requires_grad_changes_recompile():
    rec = Recorder()
    cf = engine.compile(lambda x: x * 3, backend=rec)
    cf(engine.randn(2, 3))
    cf(engine.randn(2, 3))
    assert len(rec.graphs) == 1
    cf(engine.randn(4, 3))
    assert len(rec.graphs) == 2
    cf(engine.randn(2, 3, dtype=engine.float64))
    assert len(rec.graphs) == 3
    y = cf(engine.randn(2, 3, requires_grad=True))
    assert len(rec.graphs) == 4 and y.requires_grad
    cf(engine.randn(4, 3))  # an old guard set replays
    assert len(rec.graphs) == 4


def test_grad_mode_and_training_flag_are_guarded():
    rec = Recorder()
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    cm = engine.compile(model, backend=rec)
    x = engine.randn(8, 4)
    cm(x)
    with engine.no_grad():
        out = cm(x)
    assert not out.requires_grad
    assert len(rec.graphs) == 2
    model.eval()
    assert close(cm(x), model(x))  # eval: no dropout, a new graph
    assert len(rec.graphs) == 3


def test_replaced_parameter_is_seen():
    model = nn.Linear(3, 3)
    cm = engine.compile(model, backend="eager")
    x = engine.randn(2, 3)
    cm(x)
    model.weight = nn.Parameter(engine.zeros(3, 3))
    assert close(cm(x), model.bias.expand(2, 3))


def test_non_tensor_arguments_are_guarded_by_value():
    rec = Recorder()
    cf = engine.compile(lambda x, k: x * k, backend=rec)
    x = engine.randn(3)
    assert close(cf(x, 2), x * 2) and close(cf(x, 3), x * 3) and close(cf(x, 2), x * 2)
    assert len(rec.graphs) == 2


def test_aliased_inputs_are_guarded():
    cf = engine.compile(lambda a, b: a + b * 2, backend="eager")
    x = engine.randn(3)
    assert close(cf(x, x), x * 3)
    y = engine.randn(3)
    assert close(cf(x, y), x + y * 2)


def test_cache_size_limit_falls_back_to_eager_with_a_warning(monkeypatch):
    monkeypatch.setattr(_dynamo.config, "cache_size_limit", 2)
    rec = Recorder()
    cf = engine.compile(lambda x: x + 1, backend=rec)
    cf(engine.randn(1))
    cf(engine.randn(2))
    with pytest.warns(UserWarning, match="cache_size_limit"):
        out = cf(engine.randn(3))
    assert len(rec.graphs) == 2 and tuple(out.shape) == (3,)
    assert close(cf(engine.ones(4)), engine.full((4,), 2.0))


def test_dynamic_true_keeps_one_graph_for_every_batch_size():
    rec = Recorder()
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Flatten(0))
    cm = engine.compile(model, backend=rec, dynamic=True)
    for batch in (2, 5, 9):
        x = engine.randn(batch, 4)
        assert close(cm(x), model(x))
    assert len(rec.graphs) == 1


def test_dynamic_true_specializes_when_python_branches_on_a_size():
    rec = Recorder()

    def f(x):
        return x * 2 if x.shape[0] > 3 else x - 1

    cf = engine.compile(f, backend=rec, dynamic=True)
    for n in (2, 5, 2, 6):
        x = engine.randn(n)
        assert close(cf(x), f(x))
    assert len(rec.graphs) == 3  # sizes 2, 5 and 6: each one a graph specialized on its shape


def test_reset_forgets_captured_graphs():
    rec = Recorder()
    cf = engine.compile(lambda x: x.exp(), backend=rec)
    x = engine.randn(3)
    cf(x)
    _dynamo.reset()
    cf(x)
    engine.compiler.reset()
    cf(x)
    assert len(rec.graphs) == 3


def test_is_compiling_is_true_only_while_capturing():
    seen = []

    def f(x):
        seen.append(engine.compiler.is_compiling())
        return x + 1

    cf = engine.compile(f, backend="eager")
    cf(engine.randn(2))
    cf(engine.randn(2))
    assert seen == [True] and not engine.compiler.is_compiling()


def test_nested_compiled_module_is_inlined():
    rec = Recorder()
    inner = engine.compile(nn.Linear(3, 3), backend="eager")
    outer = engine.compile(lambda x: inner(x).relu(), backend=rec)
    x = engine.randn(2, 3)
    assert close(outer(x), inner._orig_mod(x).relu())
    assert len(rec.graphs) == 1
    assert any("linear" in str(n.target) for n in rec.graphs[0].graph.nodes)


def test_outputs_keep_their_structure():
    def f(x):
        return {"a": x + 1, "b": [x * 2, 3]}, x

    cf = engine.compile(f, backend="eager")
    x = engine.randn(2)
    for _ in range(2):
        out = cf(x)
        assert isinstance(out, tuple) and out[1] is x
        assert close(out[0]["a"], x + 1) and close(out[0]["b"][0], x * 2) and out[0]["b"][1] == 3


def test_a_forward_hook_added_after_compiling_is_seen():
    model = nn.Linear(3, 3)
    cm = engine.compile(model, backend="eager")
    x = engine.randn(2, 3)
    cm(x)
    handle = model.register_forward_hook(lambda m, args, out: out * 0)
    assert close(cm(x), engine.zeros(2, 3))
    handle.remove()
    assert close(cm(x), model(x))


def test_the_first_call_computes_like_every_later_call():
    # A backend that computes differently from the eager kernels the capture runs (here: adds 1).
    def shifted(gm, example_inputs):
        def run(*args):
            return tuple(t + 1 for t in gm(*args))

        return run

    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    cm = engine.compile(model, backend=shifted)
    x = engine.randn(4, 3)
    state = engine.get_rng_state()
    with engine.no_grad():
        first = cm(x)
    stats = model[1].running_mean.clone()
    engine.set_rng_state(state)
    model[1].reset_running_stats()
    with engine.no_grad():
        again = cm(x)
    assert close(first, again)  # the first result came from the compiled program too
    assert close(stats, model[1].running_mean)  # and the capture's own update was undone, not applied twice
    assert int(model[1].num_batches_tracked) == 1

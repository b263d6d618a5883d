"""engine._inductor's lowered training-step pieces: fused SGD/Adam/AdamW kernels and inline gradient nodes.

Each compiled step equals the eager step to 1e-6 in float64 over several steps (an LR scheduler changing
the learning rate in between), the optimizer state stays the same objects, and the compiled program has
no eager fallback left for ``deliver_grads``, ``read_grad`` or the lowered ``optimizer.step()``.
"""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine._inductor import has_numba

pytestmark = pytest.mark.skipif(not has_numba(), reason="the fused optimizer kernels are numba kernels")

TOL = 1e-6


@pytest.fixture(autouse=True)
def _float64():
    previous = engine.get_default_dtype()
    engine.set_default_dtype(engine.float64)
    yield
    engine.set_default_dtype(previous)


def twins(seed: int = 0):
    engine.manual_seed(seed)
    a = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    b = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    b.load_state_dict(a.state_dict())
    return a, b


def train_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def program_of(step):
    (entry,) = step._entries()
    runner = entry.runner
    while hasattr(runner, "__wrapped__"):
        runner = runner.__wrapped__
    return runner


def _eager_update_called(p, group):
    raise AssertionError("the eager update ran")


CONFIGS = {
    "sgd": lambda ps: engine.optim.SGD(ps, lr=0.1),
    "sgd_momentum_decay": lambda ps: engine.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "sgd_nesterov": lambda ps: engine.optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True, weight_decay=1e-3),
    "sgd_dampening_maximize": lambda ps: engine.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3,
                                                          maximize=True),
    "adam": lambda ps: engine.optim.Adam(ps, lr=1e-2),
    "adam_l2_amsgrad": lambda ps: engine.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1,
                                                    amsgrad=True),
    "adam_maximize": lambda ps: engine.optim.Adam(ps, lr=1e-2, eps=1e-6, maximize=True),
    "adamw": lambda ps: engine.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "adamw_amsgrad_groups": lambda ps: engine.optim.AdamW(
        [{"params": ps[:2], "lr": 3e-2}, {"params": ps[2:], "weight_decay": 0.0}], lr=1e-2, amsgrad=True),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_fused_optimizer_step_equals_eager(config):
    eager, model = twins()
    opt_e, opt_c = CONFIGS[config](list(eager.parameters())), CONFIGS[config](list(model.parameters()))
    sched_e = engine.optim.lr_scheduler.StepLR(opt_e, step_size=2, gamma=0.5)
    sched_c = engine.optim.lr_scheduler.StepLR(opt_c, step_size=2, gamma=0.5)
    step = engine.compile(train_step, backend="inductor")
    arrays = [p._data for p in model.parameters()]
    state_objects = None
    for i in range(6):
        x, y = engine.randn(5, 6), engine.randint(0, 3, (5,))
        l_e, l_c = train_step(eager, opt_e, x, y), step(model, opt_c, x, y)
        np.testing.assert_allclose(l_c.item(), l_e.item(), rtol=TOL, atol=TOL, err_msg=f"loss at step {i}")
        sched_e.step()
        sched_c.step()
        for (name, a), b in zip(eager.named_parameters(), model.parameters(), strict=True):
            np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=TOL, atol=TOL,
                                       err_msg=f"{name} after step {i}")
        if i == 1:  # the state exists now: every later update is the fused kernel's, never the eager one
            opt_c._update = _eager_update_called
        objects = {k: {f: id(v) for f, v in s.items()} for k, s in opt_c.state_dict()["state"].items()}
        if i >= 1:
            assert objects == state_objects, "the optimizer state must be updated in place"
        state_objects = objects
    assert all(a is p._data for a, p in zip(arrays, model.parameters(), strict=True))
    state_e, state_c = opt_e.state_dict(), opt_c.state_dict()
    assert state_e["param_groups"] == state_c["param_groups"]
    for k, fields in state_e["state"].items():
        for field, value in fields.items():
            np.testing.assert_allclose(state_c["state"][k][field].numpy(), value.numpy(), rtol=TOL, atol=TOL,
                                       err_msg=f"state {k} {field}")
    program = program_of(step)
    assert "_opt_step" in program.source
    assert not any("call_method" in f and "step" in f for f in program.info["fallbacks"])
    assert not any(f.endswith(("deliver_grads", "read_grad")) for f in program.info["fallbacks"])


def test_step_hooks_and_other_optimizers_run_the_eager_step():
    eager, model = twins(1)
    opt_e, opt_c = engine.optim.Adam(eager.parameters(), lr=1e-2), engine.optim.Adam(model.parameters(), lr=1e-2)
    step = engine.compile(train_step, backend="inductor")
    calls = []
    x, y = engine.randn(4, 6), engine.randint(0, 3, (4,))
    for i in range(3):
        if i == 1:
            handle = opt_c.register_step_post_hook(lambda opt, args, kwargs: calls.append(opt))
            opt_e.register_step_post_hook(lambda opt, args, kwargs: None)
        train_step(eager, opt_e, x, y)
        step(model, opt_c, x, y)
    assert calls == [opt_c, opt_c]
    handle.remove()
    for a, b in zip(eager.parameters(), model.parameters(), strict=True):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=TOL, atol=TOL)

    eager, model = twins(2)
    opt_e, opt_c = (engine.optim.RMSprop(m.parameters(), lr=1e-2, momentum=0.5) for m in (eager, model))
    step = engine.compile(train_step, backend="inductor")
    for _ in range(3):
        train_step(eager, opt_e, x, y)
        step(model, opt_c, x, y)
    for a, b in zip(eager.parameters(), model.parameters(), strict=True):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=TOL, atol=TOL)


def test_grad_set_to_none_inside_the_function_is_replayed():
    x = engine.randn(7, requires_grad=True)

    def fwd_bwd():
        x.grad = None
        (engine.tanh(x) * 3.0).sum().backward()
        return x.grad

    compiled = engine.compile(fwd_bwd, backend="inductor")
    for _ in range(3):
        got = compiled()
        assert got is x.grad
    expected = fwd_bwd()
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=TOL, atol=TOL)
    assert not program_of(compiled).info["fallbacks"]

    def accumulate():
        (engine.tanh(x) * 3.0).sum().backward()
        return x.grad

    x.grad = None
    compiled = engine.compile(accumulate, backend="inductor")
    first = compiled().numpy().copy()
    np.testing.assert_allclose(compiled().numpy(), 2 * first, rtol=TOL)


@pytest.mark.parametrize("kernel", [2, (2, 3)])
def test_tiled_max_pool_in_a_training_step_equals_eager(kernel):
    engine.manual_seed(3)
    x = engine.tensor(np.round(np.random.default_rng(0).standard_normal((2, 3, 6, 6)) * 2), requires_grad=True)
    x.data[0, 0, 0, 0] = float("nan")  # NaN propagates and takes the gradient; ties pick the first offset
    weight = engine.randn(2, 3, 6, 6)

    def step():
        x.grad = None
        out = F.max_pool2d(F.relu(x * 1.5), kernel)
        (out.nan_to_num(0.0) * weight[..., :out.shape[2], :out.shape[3]]).sum().backward()
        return out, x.grad

    compiled = engine.compile(step, backend="inductor")
    for _ in range(3):
        out_c, grad_c = (t.detach().numpy().copy() for t in compiled())
    out_e, grad_e = (t.detach().numpy() for t in step())
    np.testing.assert_array_equal(out_c, out_e)
    np.testing.assert_array_equal(grad_c, grad_e)
    assert not any("with_ctx" in f for f in program_of(compiled).info["fallbacks"])

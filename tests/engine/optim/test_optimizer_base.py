"""The Optimizer base: parameter groups, zero_grad, closures, hooks, errors and repr."""

from __future__ import annotations

import pytest

import engine
from engine.optim import SGD, Adam, Optimizer


def quadratic(w):
    return ((w - 3.0) ** 2).sum()


def test_zero_grad_sets_none_by_default_or_zeros():
    w = engine.ones(3, requires_grad=True)
    opt = SGD([w], lr=0.1)
    quadratic(w).backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_step_skips_parameters_without_grad():
    a, b = engine.ones(2, requires_grad=True), engine.ones(2, requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    quadratic(a).backward()
    opt.step()
    assert b.tolist() == [1.0, 1.0] and a.tolist() != [1.0, 1.0]
    assert b not in opt.state


def test_closure_is_evaluated_with_grad_enabled_and_its_loss_returned():
    w = engine.zeros(2, requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = quadratic(w)
        loss.backward()
        return loss

    with engine.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 18.0
    assert w.tolist() == [1.5, 1.5]


def test_param_groups_get_defaults_and_their_own_options():
    a, b = engine.ones(1, requires_grad=True), engine.ones(1, requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    c = engine.ones(1, requires_grad=True)
    opt.add_param_group({"params": [c], "lr": 1.0})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["momentum"] == 0.9


def test_named_parameters_are_accepted():
    w = engine.ones(1, requires_grad=True)
    opt = SGD([("w", w)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w"] and opt.param_groups[0]["params"][0] is w


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda w: SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda w: SGD(w, lr=0.1), TypeError, "iterable of Tensors"),
    (lambda w: SGD([{"params": {w}}], lr=0.1), TypeError, "ordered collections"),
    (lambda w: SGD([{"params": [w]}, {"params": [w]}], lr=0.1), ValueError, "more than one parameter group"),
    (lambda w: SGD([w * 2], lr=0.1), ValueError, "non-leaf"),
    (lambda w: SGD([w], lr=-1.0), ValueError, "Invalid learning rate"),
    (lambda w: SGD([w], lr=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda w: Adam([w], betas=(1.0, 0.9)), ValueError, "beta parameter at index 0"),
    (lambda w: SGD([1.0], lr=0.1), TypeError, "only optimize Tensors"),
])
def test_bad_arguments_raise_clear_errors(make, error, match):
    w = engine.ones(2, requires_grad=True)
    with pytest.raises(error, match=match):
        make(w)


def test_load_state_dict_checks_group_shapes():
    a, b = engine.ones(1, requires_grad=True), engine.ones(1, requires_grad=True)
    state = SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="doesn't match the size"):
        SGD([a], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(state)


def test_loaded_state_is_a_copy():
    w = engine.ones(2, requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.9)
    quadratic(w).backward()
    opt.step()
    other = SGD([w], lr=0.1, momentum=0.9)
    other.load_state_dict(opt.state_dict())
    assert other.state[w]["momentum_buffer"] is not opt.state[w]["momentum_buffer"]


def test_step_hooks_run_around_step_and_can_be_removed():
    w = engine.ones(1, requires_grad=True)
    opt = SGD([w], lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    opt.step()
    pre.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


def test_custom_optimizer_subclass_works_like_torch():
    class Sign(Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.data = p.data - group["lr"] * p.grad.sign()

    w = engine.zeros(2, requires_grad=True)
    opt = Sign([w])
    quadratic(w).backward()
    opt.step()
    assert w.tolist() == pytest.approx([0.1, 0.1])
    assert opt._opt_called


def test_step_bumps_the_version_counter_like_an_in_place_op():
    w = engine.ones(2, requires_grad=True)
    y = w * w
    opt = SGD([w], lr=0.1)
    y.sum().backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_repr_lists_group_options(torch):
    w = engine.ones(1, requires_grad=True)
    assert repr(SGD([w], lr=0.1)) == repr(torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1))


def test_a_subclass_without_step_or_update_says_what_to_implement():
    class Custom(engine.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

    w = engine.zeros(2, requires_grad=True)
    w.sum().backward()
    with pytest.raises(NotImplementedError, match=r"Custom must implement step\(\) or _update"):
        Custom([w]).step()

"""``Optimizer``: parameter groups, per-parameter state, ``step`` / ``zero_grad`` and state dicts.

Subclasses implement ``step(closure=None)`` as a loop of per-parameter updates on the raw
arrays (``p._data``, ``p.grad._data``): in place, with no graph recorded.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict, defaultdict
from itertools import chain

import numpy as np

from engine.autograd.grad_mode import enable_grad
from engine.device import CPU
from engine.dtypes import float32
from engine.tensor import Tensor, _make


class _RequiredParameter:
    """Marks a default that every parameter group must give (PyTorch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_global_pre_hooks: OrderedDict = OrderedDict()
_global_post_hooks: OrderedDict = OrderedDict()


class _HookHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict):
        self._hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def _add_hook(hooks: OrderedDict, hook) -> _HookHandle:
    handle = _HookHandle(hooks)
    hooks[handle.id] = hook
    return handle


def register_optimizer_step_pre_hook(hook) -> _HookHandle:
    """Call ``hook(optimizer, args, kwargs)`` before every optimizer's ``step``."""
    return _add_hook(_global_pre_hooks, hook)


def register_optimizer_step_post_hook(hook) -> _HookHandle:
    """Call ``hook(optimizer, args, kwargs)`` after every optimizer's ``step``."""
    return _add_hook(_global_post_hooks, hook)


def _wrap_step(step):
    """Run step hooks around ``step`` and note that the optimizer stepped (for LR schedulers)."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if self._in_step:  # a subclass's step calling super().step(): hooks already ran
            return step(self, *args, **kwargs)
        for hook in chain(_global_pre_hooks.values(), self._step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                args, kwargs = result
        self._in_step = True
        try:
            out = step(self, *args, **kwargs)
        finally:
            self._in_step = False
        self._opt_called = True
        for hook in chain(self._step_post_hooks.values(), _global_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    wrapper._kiln_step = True
    return wrapper


class Optimizer:
    """Base class of optimizers: holds ``param_groups`` and per-parameter ``state``.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts that define
            parameter groups (``{"params": [...], "lr": 0.1}``).
        defaults: the default value of every option; a group's own values override them.

    Example:
        >>> w = engine.zeros(3, requires_grad=True)
        >>> opt = engine.optim.SGD([w], lr=0.1)
        >>> (w - 1).pow(2).sum().backward(); opt.step(); opt.zero_grad()
        >>> w
        tensor([0.2000, 0.2000, 0.2000], requires_grad=True)
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_kiln_step", False):
            cls.step = _wrap_step(step)

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._step_pre_hooks: OrderedDict = OrderedDict()
        self._step_post_hooks: OrderedDict = OrderedDict()
        self._in_step = False
        self._opt_called = False
        self._scratch: dict = {}
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got engine.Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----- groups -----------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own options (e.g. a new layer while fine-tuning)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of tensors in sets will change between runs. Please use a list instead.")
        else:
            params = list(params)
        if params and isinstance(params[0], tuple):
            param_group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        param_group["params"] = params
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in params]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error", UserWarning, stacklevel=3)
        taken = {id(p) for group in self.param_groups for p in group["params"]}
        if taken.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ----- the training-loop API ----------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's ``.grad``: set it to None (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if grad.grad_fn is not None:
                    grad.detach_()
                else:
                    grad.requires_grad_(False)
                grad.zero_()

    @_wrap_step
    def step(self, closure=None):
        """Update every parameter that has a gradient once; ``closure`` re-evaluates the model and returns the loss.

        Built-in optimizers implement ``_update(p, group)``; a subclass may override ``step`` instead.
        """
        return self._update_all(closure)

    def _update(self, p, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement step() or _update(p, group)")

    def _update_all(self, closure):
        """Run the closure, then ``self._update(p, group)`` for every parameter with a grad."""
        loss = run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if p._dtype.is_complex:
                        self._update_complex(p, group)
                    else:
                        self._update(p, group)
                    p._vc[0] += 1  # an in-place change, as PyTorch's p.add_() counts it
        return loss

    def _update_complex(self, p, group: dict) -> None:
        """Update a complex parameter as PyTorch does: on real (..., 2) views of it, its grad and its state."""
        shadow = _real_view(p)
        shadow.grad = _real_view(p.grad)
        self.state[shadow] = {k: _real_view(v) if _is_complex_like(v, p) else v for k, v in self.state.pop(p, {}).items()}
        try:
            self._update(shadow, group)
        finally:
            state = self.state.pop(shadow, {})
            self.state[p] = {k: _complex_view(v) if _is_real_view_like(v, shadow) else v for k, v in state.items()}

    def register_step_pre_hook(self, hook) -> _HookHandle:
        """Call ``hook(optimizer, args, kwargs)`` before this optimizer's ``step``."""
        return _add_hook(self._step_pre_hooks, hook)

    def register_step_post_hook(self, hook) -> _HookHandle:
        """Call ``hook(optimizer, args, kwargs)`` after this optimizer's ``step``."""
        return _add_hook(self._step_post_hooks, hook)

    # ----- state dicts ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """PyTorch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are numbered in group order; the state values are references, not copies.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)] if isinstance(p, Tensor) else p: s for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()`` output (possibly from ``engine.load``); state tensors are copied."""
        saved_groups = [dict(g) for g in state_dict["param_groups"]]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
        by_index = {}
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            by_index.update(zip(saved["params"], group["params"], strict=True))
        state: defaultdict = defaultdict(dict)
        for key, value in state_dict["state"].items():
            param = by_index.get(_as_index(key))
            if param is None:
                state[key] = value
            else:
                state[param] = {k: _cast_state(param, k, v) for k, v in value.items()}
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            if "betas" in saved and isinstance(saved["betas"], list):
                saved["betas"] = tuple(saved["betas"])
        self.state = state
        self.param_groups = saved_groups

    def __getstate__(self) -> dict:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_step_post_hooks", OrderedDict())
        self.__dict__.setdefault("_in_step", False)
        self.__dict__.setdefault("_opt_called", False)
        self.__dict__.setdefault("_scratch", {})

    def __repr__(self) -> str:
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            text += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        return text + ")"

    # ----- helpers for subclasses ---------------------------------------------------------
    def _scratch_like(self, array, slot: int = 0):
        """A reusable uninitialized buffer shaped like ``array`` (kept out of ``state``)."""
        key = (slot, array.dtype, type(array))
        flat = self._scratch.get(key)
        if flat is None or flat.size < array.size:
            flat = self._scratch[key] = _empty_like_flat(array)
        return flat[: array.size].reshape(array.shape)


def _empty_like_flat(array):
    from engine.backend import array_module_of

    return array_module_of(array).empty(array.size, dtype=array.dtype)


def run_closure(closure):
    """Evaluate a ``step`` closure with gradients enabled; None without one."""
    if closure is None:
        return None
    with enable_grad():
        return closure()


def check_hyperparameters(*, lr=None, eps=None, momentum=None, betas=None, weight_decay=None, alpha=None,
                          momentum_decay=None) -> None:
    """Refuse out-of-range settings with PyTorch's messages, in PyTorch's order (None: not a setting here)."""
    if lr is not None and lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps is not None and eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if momentum is not None and momentum < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    for index, beta in enumerate(betas or ()):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
    if weight_decay is not None and weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if alpha is not None and alpha < 0.0:
        raise ValueError(f"Invalid alpha value: {alpha}")
    if momentum_decay is not None and momentum_decay < 0.0:
        raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")


def _real_view(t: Tensor) -> Tensor:
    return _make(t._data[..., None].view(t._dtype.to_real().np), t._dtype.to_real(), t._device)


def _complex_view(t: Tensor) -> Tensor:
    return _make(t._data.view(t._dtype.to_complex().np)[..., 0], t._dtype.to_complex(), t._device)


def _is_complex_like(value, p: Tensor) -> bool:
    return isinstance(value, Tensor) and value._dtype.is_complex and value._data.shape == p._data.shape


def _is_real_view_like(value, shadow: Tensor) -> bool:
    return isinstance(value, Tensor) and value._dtype is shadow._dtype and value._data.shape == shadow._data.shape \
        and value._data.flags.c_contiguous


def zeros_state(p: Tensor) -> Tensor:
    """A zero-filled state tensor shaped, typed and placed like parameter ``p``."""
    return _make(p._device.xp.zeros_like(p._data), p._dtype, p._device)


def step_tensor(value: float = 0.0) -> Tensor:
    """A float32 0-dim CPU tensor counting steps, as PyTorch keeps ``state["step"]``."""
    return _make(np.array(value, dtype=np.float32), float32, CPU)


def bump_step(state: dict) -> float:
    """Add one to ``state["step"]`` in place and return the new count."""
    step = state["step"]._data
    step += 1
    return float(step)


def prepared_grad(optimizer: Optimizer, p: Tensor, group: dict):
    """The gradient array for an update: negated when maximizing, plus L2 weight decay when set."""
    xp = p._device.xp
    g = p.grad._data
    maximize = group.get("maximize", False)
    decay = group.get("weight_decay", 0)
    if not maximize and not decay:
        return g
    out = optimizer._scratch_like(p._data, slot=1)
    if not decay:
        return xp.negative(g, out=out)
    xp.multiply(p._data, decay, out=out)
    if maximize:
        out -= g
    else:
        out += g
    return out


def _as_index(key):
    """State keys come back from JSON as ints, from other tools sometimes as digit strings."""
    if isinstance(key, str) and key.isdigit():
        return int(key)
    return key


def _cast_state(param: Tensor, key, value):
    """Copy a loaded state value onto ``param``'s device (floating values also to its dtype)."""
    if key == "step" and isinstance(value, int | float):
        return step_tensor(value)
    if isinstance(value, Tensor):
        if key == "step":
            return _make(value._data.copy(), value._dtype, value._device)
        dtype = param._dtype if value._dtype.is_floating_point and param._dtype.is_floating_point else value._dtype
        out = value.detach().to(device=param._device, dtype=dtype)
        return _make(out._data.copy() if out._data is value._data else out._data, out._dtype, out._device)
    if isinstance(value, dict):
        return {k: _cast_state(param, k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cast_state(param, None, v) for v in value)
    return value

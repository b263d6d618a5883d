"""Optimizer steps lowered into the compiled program: one fused numba kernel per parameter.

A captured ``optimizer.step()`` of ``SGD`` (momentum, dampening, Nesterov, weight decay, maximize)
or ``Adam``/``AdamW`` (L2 or decoupled weight decay, AMSGrad, maximize) runs, at replay, one pass
over each parameter that updates the parameter's array and the optimizer's state arrays in place
(the same objects ``state_dict()`` returns), with the operations in the order of the eager
``_update`` and the hyperparameters cast to the parameter's dtype, so the result is the eager one.
The hyperparameters are read from the live ``param_groups`` at every call (LR schedulers change
them). A parameter the kernel does not cover (no state yet, a dtype other than float32/float64, a
non-contiguous array, a gradient of another dtype) is updated by the eager ``_update`` in the same
step; a step with hooks registered, or of an optimizer subclass, runs the eager ``step`` whole.
On CUDA the same step runs one CuPy ``ElementwiseKernel`` per parameter (``CUDA_SOURCES``: the numba
loop bodies as CUDA C, the same operations in the same order), the scalars computed on the host as on CPU.
In a ``capturable`` Adam group (PyTorch's flag; ``mode="reduce-overhead"`` sets it, see ``make_capturable``) the
step count stays on the device: a one-thread kernel (``adam_bias``) adds one to it and writes the two bias
terms as 0-d device arrays, which the same update kernel reads in place of the host scalars, so the step reads
nothing from the host and a CUDA graph can hold it (``graph_key`` says when a recorded step may be replayed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine._inductor.ir import Value

_HEADER = """import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
"""

# NOTE: one CPU kernel per combination of a group's flags, the branches settled when the source is written:
# with the flags as arguments, numba kept them in the loop and LLVM did not vectorise it (Adam on 1.86 M
# float32 elements: 4.6 ms a step, 0.45 ms specialised; NumPy's eager ops take 2.4 ms).
_SGD_ARGS = ("p, grad, buf, neg_lr, decay, momentum, one_minus_dampening, has_decay, maximize, has_momentum, "
             "dampening, nesterov")
_ADAM_ARGS = ("p, grad, m, v, v_max, decay_factor, decay, beta2, one_minus_beta1, one_minus_beta2, bias2_sqrt, "
              "eps, neg_step_size, decoupled, l2, maximize, amsgrad")


def _loop(name: str, args: str, body: list[str]) -> str:
    """numba source of ``name(args)``: ``body`` for each element ``i`` (the flags stay arguments, unread)."""
    return _HEADER + f"def {name}({args}):\n    for i in range(p.size):\n" + "".join(f"        {line}\n" for line in body)


def _gradient(weight: str, decay: bool, maximize: bool) -> list[str]:
    """``g``: the gradient with L2 weight decay (``weight * decay`` added) and negated to maximize."""
    if decay:
        return ["g = grad[i]", f"d = {weight} * decay", "g = d - g" if maximize else "g = d + g"]
    return ["g = -grad[i]" if maximize else "g = grad[i]"]


def sgd_source(has_decay: bool, maximize: bool, has_momentum: bool, dampening: bool, nesterov: bool) -> str:
    body = _gradient("p[i]", has_decay, maximize)
    if has_momentum:
        body += ["b = buf[i] * momentum", "b = b + g * one_minus_dampening" if dampening else "b = b + g",
                 "buf[i] = b", "g = b * momentum + g" if nesterov else "g = b"]
    return _loop("sgd", _SGD_ARGS, [*body, "p[i] = p[i] + g * neg_lr"])


def adam_source(decoupled: bool, l2: bool, maximize: bool, amsgrad: bool) -> str:
    body = ["x = p[i] * decay_factor" if decoupled else "x = p[i]", *_gradient("x", l2, maximize),
            "mi = m[i]", "mi = mi + (g - mi) * one_minus_beta1", "m[i] = mi",
            "vi = v[i] * beta2 + (g * g) * one_minus_beta2", "v[i] = vi"]
    if amsgrad:
        body += ["vm = v_max[i]", "if not vi <= vm:", "    vm = vi", "v_max[i] = vm", "vi = vm"]
    return _loop("adam", _ADAM_ARGS, [*body, "p[i] = x + (mi / (np.sqrt(vi) / bias2_sqrt + eps)) * neg_step_size"])


_SGD_PARAMS = ("T grad, T neg_lr, T decay, T momentum, T one_minus_dampening, bool has_decay, bool maximize, "
               "bool has_momentum, bool dampening, bool nesterov")
_SGD_GRAD = "T d = p * decay; T g = has_decay ? (maximize ? d - grad : d + grad) : (maximize ? -grad : grad); "
_ADAM_PARAMS = ("T grad, T decay_factor, T decay, T beta2, T one_minus_beta1, T one_minus_beta2, T bias2_sqrt, "
                "T eps, T neg_step_size, bool decoupled, bool l2, bool maximize, bool amsgrad")
_ADAM_MOMENTS = ("T x = decoupled ? p * decay_factor : p; T d = x * decay; "
                 "T g = l2 ? (maximize ? d - grad : d + grad) : (maximize ? -grad : grad); "
                 "T mi = m + (g - m) * one_minus_beta1; m = mi; T vi = v * beta2 + (g * g) * one_minus_beta2; v = vi; ")
_ADAM_UPDATE = "p = x + (mi / (sqrt(vi) / bias2_sqrt + eps)) * neg_step_size"
# name: (in_params, out_params, operation) of a CuPy ElementwiseKernel updating its outputs in place
CUDA_SOURCES = {
    "sgd": (_SGD_PARAMS, "T p", _SGD_GRAD + "p = p + g * neg_lr"),
    "sgd_momentum": (_SGD_PARAMS, "T p, T buf",
                     _SGD_GRAD + "T b = buf * momentum; b = dampening ? b + g * one_minus_dampening : b + g; buf = b; "
                     "T u = nesterov ? b * momentum + g : b; p = p + u * neg_lr"),
    "adam": (_ADAM_PARAMS, "T p, T m, T v", _ADAM_MOMENTS + _ADAM_UPDATE),
    "adam_amsgrad": (_ADAM_PARAMS, "T p, T m, T v, T v_max",
                     _ADAM_MOMENTS + "T vm = vi <= v_max ? v_max : vi; v_max = vm; vi = vm; " + _ADAM_UPDATE),
    # NOTE: one thread (0-d outputs): the count and both bias terms in double, as the host computes them
    "adam_bias": ("float64 lr, float64 beta1, float64 beta2", "float32 step, T neg_step_size, T bias2_sqrt",
                  "step = step + 1.0f; double n = (double)step; neg_step_size = (T)(-(lr / (1.0 - pow(beta1, n)))); "
                  "bias2_sqrt = (T)sqrt(1.0 - pow(beta2, n))"),
}

_KERNELS: dict = {}


def _kernel(name: str, flags: tuple[bool, ...]):
    """The CPU kernel of ``name`` ("sgd" or "adam") for one combination of its flags (``sgd_source``, ``adam_source``)."""
    fn = _KERNELS.get((name, flags))
    if fn is None:
        from engine._inductor.cache import load_kernel

        source = sgd_source(*flags) if name == "sgd" else adam_source(*flags)
        fn = _KERNELS[name, flags] = load_kernel(source, name)
    return fn


_NUMBERS = (int, float, bool)
_HYPER = {"sgd": ("lr", "momentum", "dampening", "weight_decay"), "adam": ("lr", "eps", "weight_decay")}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _flat(array, dtype, array_type=np.ndarray):
    """``array`` as a 1-d view when the kernel can update it in place, else None."""
    if type(array) is not array_type or array.dtype is not dtype or not array.flags.c_contiguous:
        return None
    return array.reshape(-1)


def _cuda_kernel(xp, name: str):
    from engine._inductor.cache import load_cuda_kernel

    return load_cuda_kernel(xp, "ElementwiseKernel", *CUDA_SOURCES[name], f"kiln_compiled_{name}")


class FusedStep:
    """``optimizer.step()`` with no arguments, as the compiled program calls it (see the module docstring)."""

    def __init__(self, optimizer, kind: str, xp=None):
        self.optimizer = optimizer
        self.kind = kind
        self.kernel: Any = None
        self.xp = xp  # CuPy for a CUDA program: CUDA_SOURCES kernels instead of numba ones
        self.array_type = np.ndarray if xp is None else xp.ndarray
        self.stepped: list = []  # the parameters the last call updated
        self.key_arrays: list = []
        self._bias: dict = {}  # dtype -> the 0-d (neg_step_size, bias2_sqrt) device arrays of capturable steps

    # ----- CUDA graphs -------------------------------------------------------------------------------------
    def make_capturable(self) -> None:
        """Keep the step on the device: ``capturable=True`` in every Adam group whose parameters are all on CUDA
        (as torch.compile does under cudagraphs), a step count already on the host moved there with its value."""
        if self.kind != "adam" or self.xp is None:
            return
        from engine.optim.adam import device_step

        opt = self.optimizer
        for group in opt.param_groups:
            if not group["params"] or any(p._device.type != "cuda" for p in group["params"]):
                continue
            group["capturable"] = True
            for p in group["params"]:
                step = (opt.state.get(p) or {}).get("step")
                if step is not None and step._device != p._device:
                    opt.state[p]["step"] = device_step(p, float(step))

    def graph_key(self, delivered: dict):
        """What a recorded step depends on (hyperparameters, the arrays it updates), or a str saying why this call
        cannot be replayed from a graph. ``delivered``: id(parameter) -> dtype of the gradient the recorded
        program gives it; any other parameter must have no gradient (it would be read from outside the graph)."""
        from engine.optim import optimizer as base

        opt = self.optimizer
        if (opt._step_pre_hooks or opt._step_post_hooks or base._global_pre_hooks or base._global_post_hooks
                or opt._in_step):
            return "optimizer step hooks run on the host"
        hyper = _HYPER[self.kind] + (("betas", "amsgrad", "maximize", "decoupled_weight_decay", "capturable")
                                     if self.kind == "adam" else ("nesterov", "maximize"))
        key: list = []
        self.key_arrays = []  # the arrays whose ids the key holds, kept alive with a recorded graph
        for group in opt.param_groups:
            values = tuple(group.get(k) for k in hyper)
            if not all(type(group[k]) in _NUMBERS for k in _HYPER[self.kind]):
                return "a hyperparameter is not a Python number"
            key.append(values)
            for p in group["params"]:
                g_dtype = delivered.get(id(p))
                if g_dtype is None:
                    if p.grad is not None:
                        return "a parameter has a gradient from outside the compiled step"
                    continue
                arrays = self._arrays(p, group)
                if isinstance(arrays, str):
                    return arrays
                if g_dtype != p._data.dtype:
                    return "a gradient of another dtype than its parameter"
                key.append(tuple(id(a) for a in arrays))
                self.key_arrays += arrays
        return tuple(key)

    def _arrays(self, p, group: dict):
        """The arrays a kernel step of ``p`` updates in place, or why ``p`` would take the eager (host) update."""
        data = p._data
        if data.dtype not in _FLOATS or _flat(data, data.dtype, self.array_type) is None:
            return "a parameter the fused kernels do not cover (dtype or layout)"
        state = self.optimizer.state.get(p) or {}
        names: tuple[str, ...]
        if self.kind == "sgd":
            if group["momentum"] == 0:
                return (data,)
            names = ("momentum_buffer",)
        else:
            names = ("step", "exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
            step = state.get("step")
            if step is not None and not (group["capturable"] and type(step._data) is self.array_type):
                return "Adam's step count is on the host (capturable=False)"
        found = [state.get(name) for name in names]
        if any(t is None for t in found):
            return "optimizer state not made yet"
        return (data, *(t._data for t in found if t is not None))

    def replayed(self, stepped: list) -> None:
        """The host side of a step replayed from a graph: version counters, the LR scheduler's flag."""
        for p in stepped:
            p._vc[0] += 1
        self.optimizer._opt_called = True

    def _eager(self):
        from engine._dynamo.graph_ops import call_method

        return call_method(self.optimizer, "step", (), {})

    def __call__(self):
        from engine.optim import optimizer as base

        opt = self.optimizer
        if (opt._step_pre_hooks or opt._step_post_hooks or base._global_pre_hooks or base._global_post_hooks
                or opt._in_step):
            return self._eager()
        if self.kernel is None and self.xp is not None:
            self.kernel = {name: _cuda_kernel(self.xp, name) for name in CUDA_SOURCES if name.startswith(self.kind)}
        update = self._sgd if self.kind == "sgd" else self._adam
        self.stepped = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        for group in opt.param_groups:
            if all(type(group[k]) in _NUMBERS for k in _HYPER[self.kind]) \
                    and all(type(b) in _NUMBERS for b in group.get("betas", ())):
                update(opt, group)
            else:  # a tensor learning rate, say: the eager update
                for p in group["params"]:
                    if p.grad is not None:
                        opt._update(p, group)
                        p._vc[0] += 1
        opt._opt_called = True
        return None

    def _sgd(self, opt, group: dict) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        decay, maximize, nesterov = group["weight_decay"], bool(group["maximize"]), bool(group["nesterov"])
        kernel = self.kernel if self.xp is not None else \
            _kernel("sgd", (decay != 0, maximize, momentum != 0, dampening != 0, nesterov))
        scalars: dict = {}
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            data = p._data
            dtype = data.dtype
            x = _flat(data, dtype, self.array_type) if dtype in _FLOATS else None
            g = _flat(grad._data, dtype, self.array_type) if x is not None else None
            buf = x
            if g is not None and momentum != 0:
                entry = (opt.state.get(p) or {}).get("momentum_buffer")
                buf = _flat(entry._data, dtype, self.array_type) if entry is not None else None
            if g is None or buf is None:
                opt._update(p, group)
            else:
                c = scalars.get(dtype)
                if c is None:
                    t = dtype.type
                    c = scalars[dtype] = (t(-lr), t(decay), t(momentum), t(1 - dampening), decay != 0, maximize,
                                          momentum != 0, dampening != 0, nesterov)
                if self.xp is None:
                    kernel(x, g, buf, *c)
                elif momentum != 0:
                    kernel["sgd_momentum"](g, *c, x, buf)
                else:
                    kernel["sgd"](g, *c, x)
            p._vc[0] += 1

    def _adam(self, opt, group: dict) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        decay, maximize, amsgrad = group["weight_decay"], bool(group["maximize"]), bool(group["amsgrad"])
        decoupled = bool(group["decoupled_weight_decay"]) and decay != 0
        l2 = decay != 0 and not decoupled
        kernel = self.kernel if self.xp is not None else _kernel("adam", (decoupled, l2, maximize, amsgrad))
        scalars: dict = {}
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            data = p._data
            dtype = data.dtype
            state: dict = opt.state.get(p) or {}
            flat = self.array_type
            x = _flat(data, dtype, flat) if dtype in _FLOATS and state else None
            arrays = None
            on_device = False
            if x is not None:
                m, v = state.get("exp_avg"), state.get("exp_avg_sq")
                w = state.get("max_exp_avg_sq") if amsgrad else m
                step = state.get("step")
                on_device = step is not None and self.xp is not None and bool(group["capturable"]) \
                    and type(step._data) is flat and step._data.dtype == np.float32
                if m is not None and v is not None and w is not None and step is not None \
                        and (type(step._data) is np.ndarray or on_device) and step._data.shape == ():
                    arrays = (_flat(grad._data, dtype, flat), _flat(m._data, dtype, flat),
                              _flat(v._data, dtype, flat), _flat(w._data, dtype, flat))
                    if any(a is None for a in arrays):
                        arrays = None
            if arrays is None or step is None:
                opt._update(p, group)
            elif on_device:
                self._adam_on_device(p, group, step._data, arrays, dtype, scalars, decoupled, l2, maximize, amsgrad)
            else:
                counter = step._data
                counter += 1
                n = float(counter)
                t = dtype.type
                c = scalars.get(dtype)
                if c is None:
                    c = scalars[dtype] = (t(1 - lr * decay), t(decay), t(beta2), t(1 - beta1), t(1 - beta2))
                hyper = (*c, t(math.sqrt(1 - beta2 ** n)), t(eps), t(-(lr / (1 - beta1 ** n))), decoupled, l2,
                         maximize, amsgrad)
                if self.xp is None:
                    kernel(x, *arrays, *hyper)
                elif amsgrad:
                    kernel["adam_amsgrad"](arrays[0], *hyper, x, *arrays[1:])
                else:
                    kernel["adam"](arrays[0], *hyper, x, arrays[1], arrays[2])
            p._vc[0] += 1

    def _adam_on_device(self, p, group, counter, arrays, dtype, scalars, decoupled, l2, maximize, amsgrad) -> None:
        """A capturable step: count and bias terms by ``adam_bias`` on the device, then the same update kernel."""
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        t = dtype.type
        c = scalars.get(dtype)
        if c is None:
            c = scalars[dtype] = (t(1 - lr * group["weight_decay"]), t(group["weight_decay"]), t(beta2),
                                  t(1 - beta1), t(1 - beta2))
        bias = self._bias.get(dtype)
        if bias is None:
            bias = self._bias[dtype] = (self.xp.empty((), dtype=dtype), self.xp.empty((), dtype=dtype))
        neg_step_size, bias2_sqrt = bias
        self.kernel["adam_bias"](float(lr), float(beta1), float(beta2), counter, neg_step_size, bias2_sqrt)
        hyper = (*c, bias2_sqrt, t(eps), neg_step_size, decoupled, l2, maximize, amsgrad)
        x = p._data.reshape(-1)
        if amsgrad:
            self.kernel["adam_amsgrad"](arrays[0], *hyper, x, *arrays[1:])
        else:
            self.kernel["adam"](arrays[0], *hyper, x, arrays[1], arrays[2])


def lower_optimizer_step(L, node, obj, name, args, kwargs):
    """``call_method(optimizer, "step", (), {})`` as a ``FusedStep`` effect; NotImplemented otherwise."""
    from engine._inductor import has_numba
    from engine.optim import SGD, Adam, AdamW

    if name != "step" or args or kwargs or node.users or not (has_numba() or L.cuda):
        return NotImplemented
    kind = {SGD: "sgd", Adam: "adam", AdamW: "adam"}.get(type(obj))
    if kind is None:
        return NotImplemented
    xp = None
    if L.cuda:
        params = [p for group in obj.param_groups for p in group["params"]]
        if not params or any(p._device.type != "cuda" for p in params):
            return NotImplemented
        xp = params[0]._device.xp
    return L.prog.add(Value("effect", (), None, "optimizer_step", (), {"impure": True,
                                                                        "runner": FusedStep(obj, kind, xp)}))

"""``fuse_modules``: fold BatchNorm into the conv/linear before it and pair conv/linear with ReLU."""

from __future__ import annotations

import copy

import numpy as np

from engine import nn
from engine.ao.nn import intrinsic as nni
from engine.nn.parameter import Parameter
from engine.tensor import _make


def _fold_bn(layer, bn):
    """A copy of ``layer`` (Conv2d or Linear) whose output equals bn(layer(x)) in eval mode."""
    if bn.training:
        raise AssertionError("Fusing BatchNorm requires eval mode (call model.eval() first); "
                             "quantization-aware training fusion is not supported")
    fused = copy.deepcopy(layer)
    w = layer.weight.detach().numpy().astype(np.float32)
    out = w.shape[0]
    mean, var = bn.running_mean.numpy(), bn.running_var.numpy()
    gamma = bn.weight.detach().numpy() if bn.weight is not None else np.ones(out, np.float32)
    beta = bn.bias.detach().numpy() if bn.bias is not None else np.zeros(out, np.float32)
    b = layer.bias.detach().numpy() if layer.bias is not None else np.zeros(out, np.float32)
    rsqrt = (np.float32(1) / np.sqrt(var + np.float32(bn.eps))).astype(np.float32)
    factor = (gamma * rsqrt).astype(np.float32)
    fused.weight = Parameter(_make((w * factor.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32),
                                   layer.weight.dtype, layer.weight.device))
    fused.bias = Parameter(_make(((b - mean) * rsqrt * gamma + beta).astype(np.float32), layer.weight.dtype,
                                 layer.weight.device))
    return fused


def fuse_known_modules(mods, is_qat: bool = False, additional_fuser_method_mapping=None):
    """The fused module for a list like [conv, bn, relu]; the rest become nn.Identity."""
    types = tuple(type(m) for m in mods)
    conv_like = (nn.Conv2d, nn.Linear)
    if len(mods) >= 2 and isinstance(mods[0], conv_like) and isinstance(mods[1], nn.BatchNorm2d | nn.BatchNorm1d):
        head = _fold_bn(mods[0], mods[1])
        rest = mods[2:]
    else:
        head, rest = mods[0], mods[1:]
    if len(rest) == 1 and isinstance(rest[0], nn.ReLU):
        fused = nni.ConvReLU2d(head, rest[0]) if isinstance(head, nn.Conv2d) else \
            nni.LinearReLU(head, rest[0]) if isinstance(head, nn.Linear) else None
    elif not rest and head is not mods[0]:
        fused = head
    else:
        fused = None
    if fused is None:
        raise NotImplementedError(f"Cannot fuse modules: {tuple(t.__name__ for t in types)}; supported: "
                                  "(Conv2d, BatchNorm2d), (Conv2d, BatchNorm2d, ReLU), (Conv2d, ReLU), "
                                  "(Linear, BatchNorm1d), (Linear, ReLU)")
    fused.training = mods[0].training
    return [fused] + [nn.Identity() for _ in mods[1:]]


def _get(model, name: str):
    for part in name.split("."):
        model = getattr(model, part)
    return model


def _set(model, name: str, value) -> None:
    *parents, last = name.split(".")
    for part in parents:
        model = getattr(model, part)
    setattr(model, last, value)


def fuse_modules(model, modules_to_fuse, inplace: bool = False, fuser_func=fuse_known_modules,
                 fuse_custom_config_dict=None):
    """Fuse lists of submodules by name, e.g. ``[["conv", "bn", "relu"], ["fc", "relu"]]``.

    Example:
        >>> fused = fuse_modules(model.eval(), [["conv", "bn", "relu"]])  # doctest: +SKIP
    """
    if not inplace:
        model = copy.deepcopy(model)
    groups = [modules_to_fuse] if modules_to_fuse and all(isinstance(n, str) for n in modules_to_fuse) \
        else modules_to_fuse
    for names in groups:
        new = fuser_func([_get(model, n) for n in names])
        for name, module in zip(names, new, strict=True):
            _set(model, name, module)
    return model

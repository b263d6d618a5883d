"""Gradient clipping: clip_grad_norm_ (by total norm) and clip_grad_value_ (elementwise)."""

from __future__ import annotations

import math

from engine.tensor import Tensor, wrap


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` together, as a 0-d tensor (float64 accumulation on CPU)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        from engine.creation import tensor

        return tensor(0.0)
    xp = tensors[0].device.xp
    dtype = tensors[0].dtype.np
    # float64 0-d arrays on the device: no host copy per tensor (or at all, unless error_if_nonfinite)
    if norm_type == math.inf:
        total = xp.zeros((), dtype=xp.float64)
        for t in tensors:
            if t._data.size:
                total = xp.maximum(total, xp.abs(t._data).max().astype(xp.float64))
    elif norm_type == 2.0:
        total = xp.sqrt(sum(xp.vdot(t._data.ravel(), t._data.ravel()).astype(xp.float64) for t in tensors))
    else:
        total = sum((xp.abs(t._data.astype(xp.float64)) ** norm_type).sum() for t in tensors)
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    return wrap(xp.asarray(total, dtype=dtype), tensors[0].device)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients in place so their total norm is at most ``max_norm``; returns the norm before.

    Example:
        >>> loss.backward()
        >>> total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    if grads:
        _scale_grads(grads, max_norm, total)
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the gradients in place by ``min(1, max_norm / (total_norm + 1e-6))`` for a norm computed beforehand
    (``get_total_norm``), as ``clip_grad_norm_`` does after computing it."""
    grads = _grads(parameters)
    if grads:
        _scale_grads(grads, max_norm, total_norm)


def _scale_grads(grads, max_norm, total) -> None:
    xp = grads[0].device.xp
    total_data = total._data if isinstance(total, Tensor) else xp.asarray(float(total))
    coef = xp.minimum(float(max_norm) / (total_data.astype(xp.float64) + 1e-6), 1.0)  # on the device, as PyTorch
    for g in grads:
        if g._data.flags.c_contiguous and getattr(g._data.flags, "writeable", True):
            g._data *= coef.astype(g._data.dtype)
        else:  # a broadcast or read-only gradient view: replace it
            g._data = g._data * coef.astype(g._data.dtype)
        g._vc[0] += 1


clip_grad_norm = clip_grad_norm_


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        xp = g.device.xp
        xp.clip(g._data, -clip_value, clip_value, out=g._data)
        g._vc[0] += 1

"""Margin and likelihood losses composed from differentiable tensor ops (so they run on every device):
hinge_embedding, soft_margin, multilabel_soft_margin, multilabel_margin, multi_margin, gaussian_nll,
triplet_margin_with_distance."""

from __future__ import annotations

import math

from engine.nn.functional.activation import logsigmoid
from engine.nn.functional.distance import pairwise_distance
from engine.ops.arithmetic import minimum, where
from engine.ops.loss import _check_reduction, _reduce
from engine.tensor import Tensor, _make, wrap


def _legacy(size_average, reduce, reduction: str) -> str:
    from engine.nn.modules.loss import _legacy_reduction

    return _legacy_reduction(size_average, reduce, reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    zero = input * 0
    margin_part = where(target != 1, (margin - input).clamp(min=0), zero)
    self_part = where(target != -1, input, zero)
    return _reduce(margin_part + self_part, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)), elementwise."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    return _reduce(-logsigmoid(input * target), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """Per-class binary logistic loss averaged over the classes (last dim)."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.dim() - 1
    loss = loss.sum(dim=class_dim) / input.shape[class_dim]
    return _reduce(loss, reduction)


def _class_rows(input: Tensor, target: Tensor, name: str):
    """(N, C) input and (N,) / (N, C) target, plus whether the input was unbatched."""
    if input.dim() not in (1, 2) or input.shape[-1] == 0:
        raise RuntimeError(f"{name}: expected non-empty 1D or 2D input, got shape {tuple(input.shape)}")
    if target._dtype.is_floating_point:
        raise RuntimeError(f"{name}: expected an integer target, got {target._dtype}")
    if input.dim() == 1:
        return input.unsqueeze(0), target.reshape(1, -1), True
    return input, target, False


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """sum over target classes j and non-target classes k of max(0, 1 - (x_j - x_k)) / C.

    ``target`` holds class indices, padded after the last one with -1 (PyTorch's layout).
    """
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    x, t, unbatched = _class_rows(input, target, "multilabel_margin_loss")
    if tuple(t.shape) != tuple(x.shape):
        raise RuntimeError(f"multilabel_margin_loss: inconsistent target size {tuple(target.shape)} for input of "
                           f"size {tuple(input.shape)}")
    xp = x._device.xp
    n, c = x._data.shape
    td = t._data
    if bool(((td < -1) | (td >= c)).any()):
        raise RuntimeError(f"multilabel_margin_loss: target index out of range [-1, {c - 1}]")
    valid = xp.cumprod(td >= 0, axis=1).astype(bool)  # the indices before the first -1
    tc = xp.where(valid, td, 0)
    is_target = xp.zeros((n, c), dtype=bool)
    rows = xp.broadcast_to(xp.arange(n)[:, None], (n, c))
    is_target[rows[valid], tc[valid]] = True
    mask = (valid[:, :, None] & ~is_target[:, None, :]).astype(x._dtype.np)
    x_target = x.gather(1, wrap(tc, x._device))  # (N, C): x at each listed target class
    hinge = (1 - x_target.unsqueeze(2) + x.unsqueeze(1)).clamp(min=0)
    loss = (hinge * _make(mask, x._dtype, x._device)).sum(dim=(1, 2)) / c
    if unbatched:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """sum over j != y of max(0, margin - x_y + x_j)^p / C (times weight[y])."""
    reduction = _legacy(size_average, reduce, reduction)
    _check_reduction(reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if input.dim() == 1:
        x, t, unbatched = input.unsqueeze(0), target.reshape(1), True
    else:
        x, t, unbatched = _class_rows(input, target, "multi_margin_loss")
    n, c = x._data.shape
    if tuple(t.shape) != (n,):
        raise RuntimeError(f"multi_margin_loss: inconsistent target size {tuple(target.shape)} for input of "
                           f"size {tuple(input.shape)}")
    if bool(((t._data < 0) | (t._data >= c)).any()):
        raise RuntimeError(f"multi_margin_loss: target out of range [0, {c - 1}]")
    if weight is not None and (weight.dim() != 1 or weight.shape[0] != c):
        raise ValueError(f"multi_margin_loss: weight must be a 1D tensor of {c} elements")
    xp = x._device.xp
    idx = t.reshape(n, 1)
    x_y = x.gather(1, idx)
    hinge = (margin - x_y + x).clamp(min=0)
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        hinge = hinge * weight.gather(0, t).reshape(n, 1)
    others = (xp.arange(c)[None, :] != t._data[:, None]).astype(x._dtype.np)
    loss = (hinge * _make(others, x._dtype, x._device)).sum(dim=1) / c
    if unbatched:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """0.5 * (log(max(var, eps)) + (input - target)^2 / max(var, eps)) (+ 0.5 log(2 pi) when ``full``)."""
    if isinstance(var, int | float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = input.detach() * 0 + float(var)
    elif bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif input.dim() == var.dim() and sum(v for i, v in zip(input.shape, var.shape, strict=True) if i != v) == 1:
            pass
        else:
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + (var.detach().clamp(min=eps) - var.detach())  # clamped value, identity gradient (as PyTorch)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *, distance_function=None,
                                      margin: float = 1.0, swap: bool = False, reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) for any distance function (pairwise_distance by default)."""
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} instead")
    dims = (anchor.dim(), positive.dim(), negative.dim())
    if len(set(dims)) != 1:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and negative {dims[2]}D "
                           "inputs")
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = minimum(d_neg, dist(positive, negative))
    return _reduce((margin + d_pos - d_neg).clamp(min=0), reduction)


__all__ = ["gaussian_nll_loss", "hinge_embedding_loss", "linear_cross_entropy", "multi_margin_loss", "multilabel_margin_loss",
           "multilabel_soft_margin_loss", "soft_margin_loss", "triplet_margin_with_distance_loss"]


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction: str = "mean",
                         ignore_index=None, label_smoothing: float = 0.0, options=None):
    """cross_entropy(linear(input, linear_weight, linear_bias), target): the classifier head and its loss in one
    call. ``linear_weight`` is (C, *out_features, in_features) (a K-dimensional loss when out_features is
    non-empty); ``options`` (a LinearCrossEntropyOptions) only chooses PyTorch's chunking and is accepted."""
    from engine.ops.linear import linear
    from engine.ops.loss import cross_entropy

    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}")
    batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError("expected equal input and linear_weight last dimensions (in_features), "
                           f"got {input.shape[-1]} and {linear_weight.shape[-1]}, respectively")
    classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (classes, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(classes, *out_features)}, got {tuple(linear_bias.shape)}")
    if out_features and not batches:
        raise RuntimeError(f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} "
                           f"requires batched input, (N, {in_features}), got unbatched input with shape "
                           f"{tuple(input.shape)}")
    logits_shape = (*batches, classes, *out_features)
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    width = math.prod(out_features, start=classes)
    w = linear_weight.reshape(width, in_features) if out_features else linear_weight
    b = linear_bias.reshape(width) if out_features and linear_bias is not None else linear_bias
    logits = linear(input, w, b).reshape(*logits_shape)
    return cross_entropy(logits, target, weight=weight, reduction=reduction,
                         ignore_index=-100 if ignore_index is None else ignore_index, label_smoothing=label_smoothing)

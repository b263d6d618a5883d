"""Losses: a fused cross_entropy (log-softmax + weighted NLL + label smoothing in one op), nll_loss,
and the elementwise losses (mse, l1, smooth_l1, huber, bce, bce_with_logits, kl_div)."""

from __future__ import annotations

from engine.amp import autocast_state
from engine.autograd.function import Op
from engine.autograd.grad_mode import enable_grad, state
from engine.dtypes import bfloat16, float16, float32
from engine.ops import cuda_kernels
from engine.tensor import Tensor, _make, wrap

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class CrossEntropy(Op):
    """Loss of logits (M, C) against class indices (M,) or class probabilities (M, C).

    Every variant is loss_i = -sum_c Q_ic log_softmax(x)_ic for a constant Q (targets, class
    weights, label smoothing and ignore_index folded in), so d loss_i / dx = p_i * sum(Q_i) - Q_i.
    """

    _quiet = True

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, smoothing, reduction):
        xp = x._device.xp
        data = x._data
        if x._dtype is float16 or x._dtype is bfloat16:
            data = data.astype(float32.np)
        m, c = data.shape
        if cuda_kernels.fusable(data):  # fused kernels on the GPU
            logp = cuda_kernels.log_softmax(data, 1)
            e, total = None, None
        else:
            # NOTE: log_softmax = (x - max) - log(sum(exp(x - max))): no overflow for large logits.
            shifted = data - data.max(axis=1, keepdims=True)
            e = xp.exp(shifted)
            total = e.sum(axis=1, keepdims=True)
            logp = shifted - xp.log(total)
        w = None if weight is None else weight._data.astype(data.dtype, copy=False)
        rows = xp.arange(m)
        if target._dtype.is_floating_point:
            q = target._data.astype(data.dtype, copy=False)
            if smoothing:
                q = q * (1 - smoothing) + smoothing / c
            if w is not None:
                q = q * w
            losses = -(q * logp).sum(axis=1)
            denom = float(m)
            sparse = None
        else:
            t = target._data
            valid = t != ignore_index
            tc = xp.where(valid, t, 0)
            w_t = valid.astype(data.dtype) if w is None else w[tc] * valid
            losses = -(1 - smoothing) * w_t * logp[rows, tc]
            if smoothing:
                smooth = -(logp.sum(axis=1) if w is None else logp @ w)
                losses = losses + (smoothing / c) * smooth * valid
            denom = w_t.sum()
            sparse = (tc, w_t, valid)
            q = None
        if ctx._recording:
            ctx.logp_for_target = logp if q is not None and ctx.needs_input_grad[1] else None
            ctx.arrays = (xp.exp(logp) if e is None else e / total, q, sparse, w)
            ctx.meta = (smoothing, reduction, denom)
            ctx.save_for_backward(x)
        if reduction == "none":
            out = losses
        elif reduction == "sum":
            out = losses.sum()
        else:
            out = losses.sum() / denom
        return xp.asarray(out).astype(x._dtype.np, copy=False)

    @staticmethod
    def backward(ctx, g):
        p, q, sparse, w = ctx.arrays
        smoothing, reduction, denom = ctx.meta
        xp = g._device.xp
        m, c = p.shape
        if state.enabled:  # create_graph: differentiate the composite form so it can be differentiated again
            return _composite_backward(ctx, g), None, None, None, None, None
        gd = g._data.astype(p.dtype, copy=False)
        coef = gd if reduction == "none" else (gd / denom if reduction == "mean" else gd) * xp.ones(m, p.dtype)
        if q is not None:
            gx = (p * q.sum(axis=1, keepdims=True) - q) * coef[:, None]
        else:
            tc, w_t, valid = sparse
            row_mass = (1 - smoothing) * w_t
            if smoothing:
                row_mass = row_mass + (smoothing / c) * (c if w is None else w.sum()) * valid
            gx = p * (row_mass * coef)[:, None]
            gx[xp.arange(m), tc] -= (1 - smoothing) * w_t * coef
            if smoothing:
                scale = (smoothing / c) * valid * coef
                gx -= scale[:, None] * (1.0 if w is None else w)
        (x,) = ctx.saved_tensors
        grad_target = None
        if ctx.logp_for_target is not None:  # probability targets are differentiable too
            gt = -ctx.logp_for_target * coef[:, None] * (1 - smoothing)
            if w is not None:
                gt = gt * w
            grad_target = _make(gt.astype(x._dtype.np, copy=False), x._dtype, x._device)
        return _make(gx.astype(x._dtype.np, copy=False), x._dtype, x._device), grad_target, None, None, None, None

    def _release_extra(self) -> None:
        self.arrays = None
        self.logp_for_target = None


def _dense_q(ctx, c: int, xp, dtype):
    _, q, sparse, w = ctx.arrays
    smoothing = ctx.meta[0]
    if q is not None:
        return q
    tc, w_t, valid = sparse
    dense = xp.zeros((tc.shape[0], c), dtype)
    dense[xp.arange(tc.shape[0]), tc] = (1 - smoothing) * w_t
    if smoothing:
        dense += (smoothing / c) * valid[:, None] * (1.0 if w is None else w)
    return dense


def _composite_backward(ctx, g):
    from engine.autograd.graph import grad
    from engine.ops.activation import log_softmax

    (x,) = ctx.saved_tensors
    _, reduction, denom = ctx.meta
    q = wrap(_dense_q(ctx, x._data.shape[1], x._device.xp, x._dtype.np), x._device)
    with enable_grad():
        losses = -(q * log_softmax(x, 1)).sum(1)
        out = losses if reduction == "none" else (losses.sum() if reduction == "sum" else losses.sum() / float(denom))
    return grad(out, x, g, create_graph=True)[0]


def _flatten_classes(input: Tensor, target: Tensor):
    """(N, C, d1, ...) logits -> (N*d1*..., C); class-index targets -> (N*d1*...,)."""
    if input._data.ndim == 1:
        return input.unsqueeze(0), target.unsqueeze(0), ()
    if input._data.ndim == 2:
        return input, target, (input._data.shape[0],)
    c = input._data.shape[1]
    flat = input.movedim(1, -1).reshape(-1, c)
    if target._dtype.is_floating_point:
        return flat, target.movedim(1, -1).reshape(-1, c), (input._data.shape[0], *input._data.shape[2:])
    return flat, target.reshape(-1), tuple(target._data.shape)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between logits (C,), (N, C) or (N, C, d1, ...) and class indices or probabilities."""
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        input, weight = autocast_state.cast_inputs("cross_entropy", input, weight)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    _check_targets(input, target, ignore_index)
    flat, flat_target, out_shape = _flatten_classes(input, target)
    out = CrossEntropy.apply(flat, flat_target, weight, ignore_index, float(label_smoothing), reduction)
    if reduction == "none":
        out = out.reshape(out_shape)
    return out


def _check_targets(input: Tensor, target: Tensor, ignore_index: int) -> None:
    if target._dtype.is_floating_point:
        if tuple(target._data.shape) != tuple(input._data.shape):
            raise RuntimeError(f"Expected target size {list(input._data.shape)}, got {list(target._data.shape)}")
        return
    expected = tuple(input._data.shape[:1]) + tuple(input._data.shape[2:]) if input._data.ndim > 1 else ()
    if tuple(target._data.shape) != expected:
        raise ValueError(f"Expected input batch_size ({input._data.shape[0]}) to match target batch_size "
                         f"({target._data.shape[0] if target._data.ndim else 0}).")
    c = input._data.shape[1] if input._data.ndim > 1 else input._data.shape[0]
    _check_class_range(target._data, c, ignore_index)


def _check_class_range(t, c: int, ignore_index: int) -> None:
    bad = ((t < 0) | (t >= c)) & (t != ignore_index)
    if t.size and bool(bad.any()):
        raise IndexError(f"Target {int(t[bad][0])} is out of bounds.")


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C[, d1, ...]) at class-index targets."""
    _check_reduction(reduction)
    flat, t, out_shape = _flatten_classes(input, target)
    xp = flat._device.xp
    td = t._data
    valid = td != ignore_index
    tc = xp.where(valid, td, 0)
    _check_class_range(td, flat._data.shape[1], ignore_index)
    w_t = valid.astype(flat._dtype.np) if weight is None else weight._data[tc] * valid
    picked = flat.gather(1, wrap(tc.reshape(-1, 1), flat._device)).squeeze(1)
    losses = -picked * wrap(w_t.astype(flat._dtype.np, copy=False), flat._device)
    if reduction == "none":
        return losses.reshape(out_shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / float(w_t.sum())


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None) -> Tensor:
    diff = input - target
    loss = diff * diff
    return _reduce(loss if weight is None else loss * weight, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    from engine.ops.arithmetic import where

    diff = (input - target).abs()
    if beta == 0:
        return _reduce(diff, reduction)
    return _reduce(where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    from engine.ops.arithmetic import where

    diff = (input - target).abs()
    loss = where(diff < delta, 0.5 * diff * diff, delta * (diff - 0.5 * delta))
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """BCE of probabilities; each log is clamped at -100 like PyTorch."""
    if tuple(target._data.shape) != tuple(input._data.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input size "
                         f"({input.shape}) is deprecated. Please ensure they have the same size.")
    if input._data.size and bool(((input._data < 0) | (input._data > 1)).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    loss = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """BCE of logits, computed stably as (1 - y) x + l (log1p(exp(-|x|)) + max(-x, 0))."""
    if tuple(target._data.shape) != tuple(input._data.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size ({input.shape})")
    from engine.ops.arithmetic import where

    # softplus(-x) = log1p(exp(-|x|)) + max(-x, 0), with |x| and max as branches so the gradient at x = 0 is
    # torch's -sigmoid(0) = -0.5 (the abs / clamp subgradients there would give 0)
    nonneg = input >= 0
    softplus_neg = where(nonneg, -input, input).exp().log1p() + where(nonneg, 0.0, -input)
    if pos_weight is not None:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * softplus_neg
    else:
        loss = (1 - target) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || input) with ``input`` given as log-probabilities."""
    from engine.ops.arithmetic import where

    if log_target:
        loss = target.exp() * (target - input)
    else:
        # NOTE: xlogy(t, t) - t * input, with 0 * log(0) = 0
        safe = where(target > 0, target, 1.0)
        loss = where(target > 0, target * safe.log(), 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input._data.shape[0] if input._data.ndim else 1)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False, size_average=None, eps=1e-8,
                     reduce=None, reduction: str = "mean") -> Tensor:
    if full:
        raise NotImplementedError("poisson_nll_loss(full=True) is not supported")
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                          reduction: str = "mean") -> Tensor:
    from engine.ops.arithmetic import where

    cos = cosine_similarity(input1, input2, 1, 1e-8)
    loss = where(target > 0, 1 - cos, (cos - margin).clamp(min=0))
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine similarity along ``dim`` (inputs broadcast; each norm clamped below by ``eps``)."""
    n1 = x1.norm(2, dim, keepdim=True).clamp(min=eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)

"""ctc_loss: the connectionist temporal classification loss (Graves et al., 2006) as one op, PyTorch's
forward (alpha recursion in log space) and backward (a beta pass) side by side.

NOTE: like PyTorch, the gradient is exp(log_probs) - posterior, the gradient with respect to the logits
under a log_softmax; it is what autograd sees for ``log_probs`` (so a numerical check goes through
log_softmax, as PyTorch's own tests do)."""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Op
from engine.ops.loss import _check_reduction
from engine.tensor import Tensor, _make


def _extended(targets, target_lengths, blank: int, xp):
    """(N, 2*S+1) label sequences with a blank between and around the targets, and 'may skip' flags."""
    n, s_max = len(target_lengths), int(max(target_lengths, default=0))
    ext = np.full((n, 2 * s_max + 1), blank, dtype=np.int64)
    for b in range(n):
        ext[b, 1:2 * target_lengths[b]:2] = targets[b][:target_lengths[b]]
    skip = np.zeros(ext.shape, dtype=bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    return xp.asarray(ext), xp.asarray(skip)


def _shift(a, k: int, xp):
    out = xp.full(a.shape, -xp.inf, dtype=a.dtype)
    out[:, k:] = a[:, :-k]
    return out


class CTCLoss(Op):
    """Negative log likelihood per sequence (N,) of (T, N, C) log-probabilities."""

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank, zero_infinity):
        xp = log_probs._device.xp
        lp = log_probs._data
        t_max, n, _ = lp.shape
        ext, skip = _extended(targets, target_lengths, blank, xp)
        width = ext.shape[1]
        rows = xp.arange(n)
        in_len = xp.asarray(np.asarray(input_lengths))
        valid = xp.arange(width)[None, :] < xp.asarray(2 * np.asarray(target_lengths) + 1)[:, None]
        emit = xp.stack([lp[t][rows[:, None], ext] for t in range(t_max)]) if t_max else xp.zeros((0, n, width))
        alpha = xp.full((t_max, n, width), -xp.inf, dtype=lp.dtype)
        alpha[0, :, :2] = xp.where(valid[:, :2], emit[0, :, :2], -xp.inf)
        for t in range(1, t_max):
            prev = alpha[t - 1]
            a = xp.logaddexp(prev, _shift(prev, 1, xp))
            a = xp.where(skip, xp.logaddexp(a, _shift(prev, 2, xp)), a)
            alpha[t] = xp.where(valid & (t < in_len)[:, None], a + emit[t], -xp.inf)
        last = alpha[xp.maximum(in_len - 1, 0), rows]
        end = xp.asarray(2 * np.asarray(target_lengths))
        nll = -xp.logaddexp(last[rows, end], xp.where(end > 0, last[rows, xp.maximum(end - 1, 0)], -xp.inf))
        if ctx._recording:
            ctx.arrays = (emit, alpha, nll, ext, skip, valid, in_len, end, zero_infinity)
            ctx.save_for_backward(log_probs)
        return nll.astype(lp.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        emit, alpha, nll, ext, skip, valid, in_len, end, zero_infinity = ctx.arrays
        (log_probs,) = ctx.saved_tensors
        lp = log_probs._data
        xp = log_probs._device.xp
        t_max, n, _c = lp.shape
        rows = xp.arange(n)
        beta = xp.full(alpha.shape, -xp.inf, dtype=lp.dtype)
        skip_next = xp.zeros(skip.shape, dtype=bool)
        skip_next[:, :-2] = skip[:, 2:]
        for t in range(t_max - 1, -1, -1):
            init = xp.full((n, ext.shape[1]), -xp.inf, dtype=lp.dtype)
            init[rows, end] = 0.0
            init[rows, xp.maximum(end - 1, 0)] = xp.where(end > 0, 0.0, init[rows, xp.maximum(end - 1, 0)])
            if t + 1 < t_max:
                nxt = beta[t + 1]
                b = xp.logaddexp(nxt, _shift_left(nxt, 1, xp))
                b = xp.where(skip_next, xp.logaddexp(b, _shift_left(nxt, 2, xp)), b)
            else:
                b = init
            b = xp.where((t == in_len - 1)[:, None], init, b)
            beta[t] = xp.where(valid & (t < in_len)[:, None], b + emit[t], -xp.inf)
        ab = alpha + beta
        lcab = xp.full(lp.shape, -xp.inf, dtype=lp.dtype)
        for s in range(ext.shape[1]):
            cur = lcab[:, rows, ext[:, s]]
            lcab[:, rows, ext[:, s]] = xp.logaddexp(cur, ab[:, :, s])
        with np.errstate(invalid="ignore", over="ignore"):
            grad = xp.exp(lp) - xp.exp(lcab + nll[None, :, None] - lp)
        # NOTE: an impossible alignment has a NaN gradient, as in PyTorch, unless zero_infinity zeroes it.
        live = (xp.arange(t_max)[:, None] < in_len[None, :])[:, :, None]
        if zero_infinity:
            live = live & xp.isfinite(nll)[None, :, None]
        with np.errstate(invalid="ignore"):
            grad = xp.where(live, grad * g._data.astype(lp.dtype, copy=False)[None, :, None], 0.0)
        return (_make(grad.astype(lp.dtype, copy=False), log_probs._dtype, log_probs._device),
                None, None, None, None, None)


def _shift_left(a, k: int, xp):
    out = xp.full(a.shape, -xp.inf, dtype=a.dtype)
    out[:, :-k] = a[:, k:]
    return out


def _lengths(value, name: str, count: int) -> list[int]:
    lengths = [int(v) for v in (value.tolist() if isinstance(value, Tensor) else value)]
    if isinstance(value, Tensor) and value.dim() == 0:
        lengths = [int(value.item())]
    if len(lengths) != count:
        raise RuntimeError(f"ctc_loss: expected {name} to have {count} values, got {len(lengths)}")
    if any(v < 0 for v in lengths):
        raise RuntimeError(f"ctc_loss: {name} must be non-negative, got {lengths}")
    return lengths


def ctc_loss(log_probs: Tensor, targets, input_lengths, target_lengths, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False) -> Tensor:
    """CTC loss of (T, N, C) (or unbatched (T, C)) log-probabilities against targets given as (N, S) padded rows or
    one concatenated 1-D sequence. ``mean`` divides each loss by its target length, then averages the batch;
    ``zero_infinity`` turns impossible alignments (infinite loss) into zero loss and zero gradient.

    Example:
        >>> lp = engine.randn(50, 2, 20, requires_grad=True).log_softmax(2)
        >>> F.ctc_loss(lp, engine.randint(1, 20, (2, 10)), [50, 40], [10, 7]).backward()
    """
    _check_reduction(reduction)
    if log_probs.dim() == 2:  # unbatched: (T, C) against (S,)
        one = [int(v) for v in np.atleast_1d(np.asarray(_as_list(input_lengths)))]
        tgt = [int(v) for v in np.atleast_1d(np.asarray(_as_list(target_lengths)))]
        loss = ctc_loss(log_probs.unsqueeze(1), targets.reshape(1, -1), one, tgt, blank, reduction, zero_infinity)
        return loss.reshape(()) if reduction == "none" else loss
    if log_probs.dim() != 3:
        raise RuntimeError(f"ctc_loss: expected log_probs of 2 or 3 dims, got {tuple(log_probs.shape)}")
    t_max, n, c = log_probs.shape
    if not 0 <= blank < c:
        raise RuntimeError("blank must be in label range")
    in_len = _lengths(input_lengths, "input_lengths", n)
    tgt_len = _lengths(target_lengths, "target_lengths", n)
    if any(v > t_max for v in in_len):
        raise RuntimeError(f"Expected input_lengths to have value at most {t_max}, but got value "
                           f"{max(in_len)}")
    data = np.asarray(targets.tolist(), dtype=np.int64) if isinstance(targets, Tensor) else np.asarray(targets)
    if data.ndim == 1:
        cuts = np.cumsum([0, *tgt_len])
        if cuts[-1] > data.size:
            raise RuntimeError(f"ctc_loss: target_lengths sum to {cuts[-1]} but targets has {data.size} values")
        rows = [data[cuts[b]:cuts[b + 1]] for b in range(n)]
    else:
        for _b, v in enumerate(tgt_len):
            if v > data.shape[1]:
                raise RuntimeError(f"Expected tensor to have size at least {v} at dimension 1, but got size "
                                   f"{data.shape[1]} for argument #2 'targets' (while checking arguments for "
                                   f"ctc_loss_cpu)")
        rows = [data[b] for b in range(n)]
    nll = CTCLoss.apply(log_probs, rows, in_len, tgt_len, int(blank), bool(zero_infinity))
    if zero_infinity:
        from engine.creation import zeros_like
        from engine.ops.arithmetic import where

        nll = where(nll == float("inf"), zeros_like(nll), nll)
    return _finish(nll, tgt_len, reduction)


def _as_list(value):
    return value.tolist() if isinstance(value, Tensor) else value


def _finish(nll: Tensor, tgt_len: list[int], reduction: str) -> Tensor:
    if reduction == "sum":
        return nll.sum()
    if reduction == "mean":
        from engine.creation import tensor

        denom = tensor([max(v, 1) for v in tgt_len], dtype=nll.dtype, device=nll.device)
        return (nll / denom).mean()
    return nll


__all__ = ["ctc_loss"]

"""Decompositions used while a backward pass is traced (``aot_eager`` / ``inductor``).

An op whose backward reads data the tracer cannot follow is recorded as the ops it is made of, with
eager's arithmetic: dropout draws its mask as a tensor (same generator, same order), cross entropy
becomes log_softmax + gather, and training batch norm a traced standardization plus one opaque
in-place update of the running statistics.
"""

from __future__ import annotations

from engine._dynamo.graph_ops import dropout_mask, update_running_stats
from engine.fx.registry import OpDef
from engine.tensor import Tensor


def _dropout_decomposition(tracer, input, p: float = 0.5, training: bool = True,
                           inplace: bool = False):
    # NOTE: the same mask draw as eager dropout (same generator, same order), kept as a tensor so that
    # the traced backward multiplies by the replayed mask instead of the captured one.
    if not training or inplace or not 0.0 < p < 1.0 or not isinstance(input, Tensor):
        return NotImplemented
    mask = tracer.call_op(_DROPOUT_MASK, (input, p), {})
    return input * mask


def _cross_entropy_decomposition(tracer, input, target, weight=None, size_average=None,
                                 ignore_index: int = -100, reduce=None, reduction: str = "mean",
                                 label_smoothing: float = 0.0):
    import engine
    from engine.ops import loss

    if (weight is not None or size_average is not None or reduce is not None or label_smoothing
            or not isinstance(input, Tensor) or input._data.ndim != 2 or target._dtype.is_floating_point
            or reduction not in ("mean", "sum", "none")):
        return NotImplemented
    tracer._run(loss._check_targets, (input, target, ignore_index), {})
    logp = engine.log_softmax(input, 1)
    valid = target != ignore_index
    picked = logp.gather(1, engine.where(valid, target, 0).unsqueeze(1)).squeeze(1)
    weights = valid.to(input.dtype)
    losses = -(picked * weights)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / weights.sum()


def _batch_norm_decomposition(tracer, input, running_mean, running_var, weight=None, bias=None,
                              training: bool = False, momentum: float = 0.1, eps: float = 1e-5):
    # NOTE: the same arithmetic as eager batch_norm in training (batch statistics, running statistics
    # blended in place by one opaque node), with the standardization a traced op.
    from engine.ops import normalization

    if not training or not isinstance(input, Tensor) or input._data.ndim < 2:
        return NotImplemented
    count = input._data.size // input._data.shape[1]
    if count <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"{list(input._data.shape)}")
    axes = (0, *range(2, input._data.ndim))
    if running_mean is not None or running_var is not None:
        tracer.opaque_call(update_running_stats, (input, running_mean, running_var, float(momentum)),
                           lambda: update_running_stats(input, running_mean, running_var, float(momentum)))
    out = normalization.standardize(input, axes, eps)
    shape = (1, input._data.shape[1]) + (1,) * (input._data.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _make_decompositions() -> dict:
    return {"engine.nn.functional.dropout": _dropout_decomposition,
            "engine.nn.functional.cross_entropy": _cross_entropy_decomposition,
            "engine.nn.functional.batch_norm": _batch_norm_decomposition}


DECOMPOSITIONS = _make_decompositions()
_DROPOUT_MASK = OpDef("engine._dynamo.dropout_mask", dropout_mask, call=dropout_mask, impure=True)

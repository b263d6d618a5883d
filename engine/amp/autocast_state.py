"""The autocast state that ops consult: which device types autocast, to which dtype, per-op policy.

The hook for an op (core's matmul; nn's linear, conv and losses) is two lines::

    if autocast_state.active:
        x, w = autocast_state.cast_inputs("linear", x, w)

``cast_inputs`` looks ``op`` up in the policy: ops in ``LOWER_PRECISION`` get their floating inputs
cast to the autocast dtype (float16 / bfloat16), ops in ``FLOAT32`` get half-precision inputs cast
up to float32, any other op is left alone. Only tensors on a device type whose autocast is
enabled are cast. This module imports nothing from the engine at load time, so any op module can
import it.
"""

from __future__ import annotations

# Ops that run faster, and are safe, in the low dtype (PyTorch's "lower_precision_fp" list).
LOWER_PRECISION = frozenset({
    "matmul", "mm", "bmm", "mv", "addmm", "addmv", "addbmm", "baddbmm", "linear", "bilinear", "einsum",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "prelu",
    "scaled_dot_product_attention", "multi_head_attention", "lstm_cell", "gru_cell", "rnn_tanh_cell",
    "rnn_relu_cell",
})

# Ops whose range or accumulation needs float32: reductions, normalizations, losses, exp/log families.
FLOAT32 = frozenset({
    "softmax", "log_softmax", "softmin", "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
    "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss",
    "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
    "multilabel_margin_loss", "multilabel_soft_margin_loss", "multi_margin_loss", "triplet_margin_loss",
    "ctc_loss", "gaussian_nll_loss", "layer_norm", "group_norm", "batch_norm", "instance_norm", "rms_norm",
    "local_response_norm", "normalize", "norm", "sum", "mean", "prod", "cumsum", "cumprod", "logsumexp",
    "std", "var", "exp", "expm1", "log", "log1p", "log2", "log10", "pow", "reciprocal", "rsqrt", "erfinv",
    "acos", "asin", "cosh", "sinh", "tan", "cosine_similarity", "pdist", "cdist", "dist", "renorm",
    "softplus",
})

active = False  # True while some device type autocasts: the one check ops make on their hot path
_dtypes: dict[str, object] = {}  # device type -> engine dtype, for device types that autocast now
_cache_enabled: dict[str, bool] = {}
_cache: dict[tuple, tuple] = {}  # (id(tensor), dtype name) -> (tensor, version, cast tensor)


def autocast_dtype(device_type: str):
    """The engine dtype ``device_type`` autocasts to now, or None when its autocast is off."""
    return _dtypes.get(device_type)


def set_state(device_type: str, dtype, cache_enabled: bool = True) -> tuple:
    """Turn autocast for ``device_type`` on (dtype) or off (None); returns the previous state."""
    global active
    previous = (_dtypes.get(device_type), _cache_enabled.get(device_type, True))
    if dtype is None:
        _dtypes.pop(device_type, None)
    else:
        _dtypes[device_type] = dtype
        _cache_enabled[device_type] = cache_enabled
    active = bool(_dtypes)
    return previous


def clear_cache() -> None:
    """Forget cached casts of parameters (done when the outermost autocast region exits)."""
    _cache.clear()


def target_dtype(op: str, t):
    """The dtype ``op`` should see ``t`` in under the current autocast state (``t``'s own if none)."""
    dtype = t._dtype
    if not dtype.is_floating_point:
        return dtype
    low = _dtypes.get(t._device.type)
    if low is None:
        return dtype
    if op in LOWER_PRECISION:
        return low
    if op in FLOAT32 and dtype.itemsize < 4:
        from engine.dtypes import float32

        return float32
    return dtype


def cast_inputs(op: str, *args) -> tuple:
    """``args`` with every tensor cast as ``op``'s autocast policy says; other values unchanged.

    Example:
        >>> with engine.autocast("cpu", dtype=engine.float16):
        ...     a, b = autocast_state.cast_inputs("matmul", engine.ones(2, 2), engine.ones(2, 2))
        >>> a.dtype
        engine.float16
    """
    if not active:
        return args
    from engine.tensor import Tensor

    out = []
    for t in args:
        if isinstance(t, Tensor):
            dtype = target_dtype(op, t)
            if dtype is not t._dtype:
                t = _cast(t, dtype)
        out.append(t)
    return tuple(out)


def _cast(t, dtype):
    from engine.ops.conversion import to_copy

    # NOTE: leaf parameters are cast once per autocast region (as PyTorch's weight cache does).
    cacheable = t.grad_fn is None and t._requires_grad and _cache_enabled.get(t._device.type, True)
    if not cacheable:
        return to_copy(t, dtype)
    key = (id(t), dtype.name)
    hit = _cache.get(key)
    if hit is not None and hit[0] is t and hit[1] == t._vc[0]:
        return hit[2]
    cast = to_copy(t, dtype)
    _cache[key] = (t, t._vc[0], cast)
    return cast

"""Attention: scaled_dot_product_attention and the multi-head attention forward used by nn.MultiheadAttention."""

from __future__ import annotations

import math

from engine.dtypes import bool_
from engine.ops.activation import softmax
from engine.ops.dropout import dropout
from engine.ops.linear import linear
from engine.tensor import Tensor, wrap


def _causal_mask(length: int, source: int, like: Tensor) -> Tensor:
    xp = like._device.xp
    return wrap(xp.tril(xp.ones((length, source), dtype=bool)), like._device)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, enable_gqa: bool = False) -> Tensor:
    """softmax(Q Kᵀ * scale + mask) V over the last two dims; boolean masks mark positions that may attend.

    Example:
        >>> q = k = v = engine.randn(2, 4, 5, 8)          # (batch, heads, length, head_dim)
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
        engine.Size([2, 4, 5, 8])
    """
    length, source = query._data.shape[-2], key._data.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(query._data.shape[-1])
    if enable_gqa and key._data.ndim >= 3 and key._data.shape[-3] != query._data.shape[-3]:
        repeats = query._data.shape[-3] // key._data.shape[-3]
        key = key.repeat_interleave(repeats, -3)
        value = value.repeat_interleave(repeats, -3)
    scores = query.matmul(key.mT) * scale
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
        scores = scores.masked_fill(_causal_mask(length, source, query).logical_not(), float("-inf"))
    if attn_mask is not None:
        if attn_mask._dtype is bool_:
            scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            scores = scores + attn_mask
    weights = softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return weights.matmul(value)


def _float_mask(mask: Tensor | None, dtype) -> Tensor | None:
    """Boolean masks (True = masked out) become additive -inf masks of ``dtype``."""
    if mask is None:
        return None
    if mask._dtype is bool_:
        xp = mask._device.xp
        return wrap(xp.where(mask._data, -xp.inf, 0.0).astype(dtype.np), mask._device)
    return mask.to(dtype)


def multi_head_attention_forward(query, key, value, num_heads: int, in_proj_weight, in_proj_bias, out_proj_weight,
                                 out_proj_bias, dropout_p: float = 0.0, training: bool = True,
                                 key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                                 average_attn_weights: bool = True, is_causal: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None,
                                 bias_k=None, bias_v=None, add_zero_attn: bool = False):
    """Multi-head attention on batch-first (N, L, E) query and (N, S, E) key/value.

    Returns (output (N, L, E), weights (N, L, S) averaged over heads, (N, H, L, S), or None).
    """
    if bias_k is not None or bias_v is not None or add_zero_attn:
        raise NotImplementedError("add_bias_kv / add_zero_attn are not supported")
    n, length, embed = query.shape  # NOTE: .shape, not _data.shape: sizes stay symbolic under graph capture
    source = key.shape[1]
    head_dim = embed // num_heads
    if q_proj_weight is None:
        if key is query and value is query:
            q, k, v = linear(query, in_proj_weight, in_proj_bias).chunk(3, -1)
        else:
            w_q, w_k, w_v = in_proj_weight.chunk(3, 0)
            b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3, 0)
            q, k, v = linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)
    else:
        b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else in_proj_bias.chunk(3, 0)
        q = linear(query, q_proj_weight, b_q)
        k = linear(key, k_proj_weight, b_k)
        v = linear(value, v_proj_weight, b_v)
    q = q.reshape(n, length, num_heads, head_dim).transpose(1, 2)
    k = k.reshape(n, source, num_heads, head_dim).transpose(1, 2)
    v = v.reshape(n, source, num_heads, head_dim).transpose(1, 2)
    if is_causal and attn_mask is None:
        attn_mask = _causal_mask(length, source, query).logical_not()
    mask = _float_mask(attn_mask, q._dtype)
    if mask is not None:
        if mask._data.ndim == 3:  # (N * H, L, S)
            mask = mask.reshape(n, num_heads, length, source)
        elif mask._data.ndim != 2:
            raise RuntimeError(f"attn_mask's dimension {mask._data.ndim} is not supported")
    padding = _float_mask(key_padding_mask, q._dtype)
    if padding is not None:
        padding = padding.reshape(n, 1, 1, source)
        mask = padding if mask is None else mask + padding
    scores = (q * (1.0 / math.sqrt(head_dim))).matmul(k.mT)
    if mask is not None:
        scores = scores + mask
    weights = softmax(scores, -1)
    if dropout_p > 0.0 and training:
        weights = dropout(weights, dropout_p, True)
    out = weights.matmul(v).transpose(1, 2).reshape(n, length, embed)
    out = linear(out, out_proj_weight, out_proj_bias)
    if not need_weights:
        return out, None
    return out, (weights.mean(1) if average_attn_weights else weights)

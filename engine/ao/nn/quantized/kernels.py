"""Integer kernels of the quantized modules, written against ``xp`` (NumPy on CPU, CuPy on GPU).

The int8 x int8 products accumulate exactly as int32 would: the GEMM runs in float32 when every
partial sum provably stays below 2**24 and in float64 (exact below 2**53) otherwise, so BLAS /
cuBLAS do the work and the result equals an int32 accumulation. Requantization follows fbgemm's
reference (``ReQuantizeOutput`` with a float bias): float32 multiplier, round half to even.
"""

from __future__ import annotations

import math

import numpy as np


def packed_weight(w):
    """The centered int8 weight (w - zero_point) as a (K, N) float32 matrix, cached on the QTensor.

    Like fbgemm's packed weight, it is made once per weight; returns (matrix, max |entry|).
    """
    if w._packed is None:
        xp = w._device.xp
        zp = w._zero_points if w._axis is None else np.asarray(w._zero_points, np.int64)
        centered = w._data.astype(np.int16) - xp.asarray(zp, dtype=np.int16).reshape((-1,) + (1,) * (w._data.ndim - 1))
        matrix = xp.ascontiguousarray(centered.reshape(centered.shape[0], -1).T.astype(np.float32))
        w._packed = (matrix, int(abs(centered).max().item()) if centered.size else 0)
    return w._packed


def int_matmul(xp, a, packed, a_bound: int):
    """a @ matrix for an integer-valued ``a`` (|a| <= a_bound): exactly the int32 accumulation.

    NOTE: float32 GEMMs over K-chunks short enough that no partial sum reaches 2**24 are exact;
    the chunk results add up in float64 (exact below 2**53).
    """
    matrix, b_bound = packed
    k = matrix.shape[0]
    chunk = max(1, (2 ** 24 - 1) // max(1, a_bound * b_bound))
    a = a.astype(np.float32, copy=False)
    if k <= chunk:
        return xp.matmul(a, matrix)
    out = None
    for start in range(0, k, chunk):
        part = xp.matmul(a[..., start:start + chunk], matrix[start:start + chunk]).astype(np.float64)
        out = part if out is None else out + part
    return out


def choose_dynamic_qparams(x_min: float, x_max: float, reduce_range: bool) -> tuple[float, int]:
    """fbgemm's ``ChooseQuantizationParams`` for a quint8 activation (dynamic quantization)."""
    qmin, qmax = 0, 127 if reduce_range else 255
    lo, hi = min(float(np.float32(x_min)), 0.0), max(float(np.float32(x_max)), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if float(np.float32(scale)) == 0.0 or math.isinf(1.0 / float(np.float32(scale))):
        scale = 0.1
    scale = float(np.float32(scale))
    zp_from_min, zp_from_max = qmin - lo / scale, qmax - hi / scale
    err_min, err_max = abs(qmin) - abs(lo / scale), abs(qmax) - abs(hi / scale)
    initial = zp_from_min if err_min < err_max else zp_from_max
    zero_point = qmin if initial < qmin else qmax if initial > qmax else int(np.rint(initial))
    return scale, zero_point


def dynamic_linear(xp, x, w, bias, reduce_range: bool = True):
    """y = dequant(quant(x)) @ dequant(w).T + bias with a per-batch activation scale; float32 out.

    ``x``: (M, K) float32 array; ``w``: (N, K) qint8 QTensor, per tensor or per channel (axis 0).
    """
    lo, hi = (x.min().item(), x.max().item()) if x.size else (0.0, 0.0)
    scale, zp = choose_dynamic_qparams(lo, hi, reduce_range)
    qmax = 127 if reduce_range else 255
    # quantize_array's arithmetic, kept in float: the centered integers feed the float GEMM directly
    t = (x.astype(np.float64) * np.float64(np.float32(1.0) / np.float32(scale)) + np.float64(zp)).astype(np.float32)
    x_c = xp.clip(xp.rint(t, out=t), 0, qmax, out=t)
    x_c -= np.float32(zp)
    # NOTE: |x - zp| <= max(zp, qmax - zp): the tighter bound keeps K = 1024 in one exact float32 GEMM.
    acc = int_matmul(xp, x_c, packed_weight(w), max(zp, qmax - zp))
    w_scale = w._scales if w._axis is None else np.asarray(w._scales, np.float32)
    mult = (np.float32(scale) * xp.asarray(w_scale, dtype=np.float32)).astype(np.float32)
    out = acc if acc.dtype == np.float32 else acc.astype(np.float32)
    out *= mult  # the GEMM's result is ours: scale and shift it in place
    if bias is not None:
        out += bias
    return out


def requantize(xp, acc, act_scale: float, w_scale, bias, out_scale: float, out_zp: int, relu: bool, channel_axis: int):
    """fbgemm: raw + bias / (sx * sw), times (sx * sw / s_out), rounded, + zero point, clamped to quint8."""
    shape = [1] * acc.ndim
    shape[channel_axis] = -1
    act_w = (np.float32(act_scale) * xp.asarray(w_scale, dtype=np.float32)).astype(np.float32).reshape(shape)
    raw = acc.astype(np.float32)
    if bias is not None:
        raw = raw + (bias.astype(np.float32).reshape(shape) / act_w)
    ab = raw * (act_w / np.float32(out_scale))
    out = xp.rint(ab) + out_zp
    return xp.clip(out, out_zp if relu else 0, 255).astype(np.uint8)


def im2col(xp, x, kernel, stride, padding, dilation):
    """(N, C, H, W) -> (N, Ho, Wo, C * kh * kw) patches (channel-major, like the weight's layout)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = [x[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]
    patches = xp.stack(cols, axis=2)  # (N, C, kh*kw, Ho, Wo)
    return patches.reshape(n, c * kh * kw, ho, wo).transpose(0, 2, 3, 1), ho, wo

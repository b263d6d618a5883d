"""``HistogramObserver``: a running histogram, then PyTorch's L2-error search for the clipping range."""

from __future__ import annotations

import numpy as np

from engine.ao.quantization.observer import _EPS, UniformQuantizationObserverBase, _cpu, _host
from engine.ao.quantization.qtensor import per_tensor_affine
from engine.dtypes import as_dtype, quint8
from engine.tensor import _make

_F32 = np.float32


def _histc(x: np.ndarray, bins: int, lo, hi) -> np.ndarray:
    """``torch.histc``: equal-width bins over [lo, hi]; values outside are dropped, hi goes in the last bin."""
    lo, hi = _F32(lo), _F32(hi)
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    x = x[(x >= lo) & (x <= hi)]
    pos = ((x - lo) * _F32(bins) / (hi - lo)).astype(np.int64)
    return np.bincount(np.minimum(pos, bins - 1), minlength=bins).astype(_F32)


class HistogramObserver(UniformQuantizationObserverBase):
    """Records a histogram of the values seen and picks the (min, max) minimizing the L2 quantization error.

    Args: bins=2048, dtype=quint8, qscheme=per_tensor_affine, reduce_range=False, quant_min, quant_max.
    """

    def __init__(self, bins: int = 2048, dtype=quint8, qscheme=per_tensor_affine, reduce_range: bool = False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps=_EPS, is_dynamic: bool = False, **kwargs):
        if is_dynamic:
            raise NotImplementedError("HistogramObserver doesn't support dynamic quantization")
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic)
        if qscheme is not per_tensor_affine and qscheme.name != "per_tensor_symmetric":
            raise NotImplementedError("HistogramObserver supports per-tensor qschemes only")
        self.bins = bins
        self.dst_nbins = 2 ** (8 * self.dtype.itemsize)
        self.upsample_rate = 16
        self.register_buffer("histogram", _make(np.zeros(bins, _F32), as_dtype("float32"), _cpu()))
        self.register_buffer("min_val", _make(np.array(np.inf, _F32), as_dtype("float32"), _cpu()))
        self.register_buffer("max_val", _make(np.array(-np.inf, _F32), as_dtype("float32"), _cpu()))

    def _set(self, hist, lo, hi) -> None:
        self.histogram = _make(np.asarray(hist, _F32), as_dtype("float32"), _cpu())
        self.min_val = _make(np.asarray(lo, _F32), as_dtype("float32"), _cpu())
        self.max_val = _make(np.asarray(hi, _F32), as_dtype("float32"), _cpu())

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = _host(x_orig).reshape(-1)
        x = x[np.isfinite(x) | np.isnan(x)]
        if x.size == 0:
            return x_orig
        x_min, x_max = _F32(x.min()), _F32(x.max())
        cur_min, cur_max = _F32(self.min_val.numpy()), _F32(self.max_val.numpy())
        if np.isinf(cur_min) or np.isinf(cur_max):
            self._set(_histc(x, self.bins, x_min, x_max), x_min, x_max)
            return x_orig
        new_min, new_max = min(cur_min, x_min), max(cur_max, x_max)
        update = _histc(x, self.bins, new_min, new_max)
        hist = self.histogram.numpy()
        if new_min == cur_min and new_max == cur_max:
            combined = hist + update
        elif cur_min == cur_max:
            combined = _histc(np.array([cur_min], _F32), self.bins, new_min, new_max) * hist.sum() + update
        else:
            combined = update + self._upscale(hist, cur_min, cur_max, new_min, new_max)
        self._set(combined, new_min, new_max)
        return x_orig

    def _upscale(self, hist, orig_min, orig_max, new_min, new_max):
        n = self.bins * self.upsample_rate
        hist = np.repeat(hist, self.upsample_rate) / _F32(self.upsample_rate)
        size = (orig_max - orig_min) / _F32(n)
        mids = np.linspace(orig_min, orig_max, n + 1, dtype=_F32)[:-1] + _F32(0.5) * size
        bounds = np.linspace(new_min, new_max, self.bins + 1, dtype=_F32)
        bucket = np.clip(np.searchsorted(bounds, mids, side="right") - 1, 0, self.bins - 1)
        return np.bincount(bucket, weights=hist, minlength=self.bins).astype(_F32)

    def _quantization_error(self, start: int, end: int) -> float:
        lo, hi = float(self.min_val.numpy()), float(self.max_val.numpy())
        width = (hi - lo) / self.bins
        dst_width = width * (end - start + 1) / self.dst_nbins
        if dst_width == 0.0:
            return 0.0
        src = np.arange(self.bins, dtype=_F32)
        begin = (src - start) * _F32(width)
        stop = begin + _F32(width)
        dst_begin = np.clip(np.floor(begin / _F32(dst_width)), 0, self.dst_nbins - 1)
        dst_end = np.clip(np.floor(stop / _F32(dst_width)), 0, self.dst_nbins - 1)
        density = self.histogram.numpy() / _F32(width)

        def norm(a, b):
            return density * (b * b * b - a * a * a) / 3

        half = _F32(dst_width / 2)
        total = norm(begin - (dst_begin + _F32(0.5)) * _F32(dst_width), np.full(self.bins, half, _F32))
        total = total + (dst_end - dst_begin - 1) * norm(-half, half)
        total = total + norm(-half, stop - (dst_end * _F32(dst_width) + half))
        return float(total.astype(_F32).sum(dtype=_F32))

    def _search(self):
        """PyTorch's (caffe2's) non-linear search: shrink [alpha, beta] while the L2 error falls."""
        hist = self.histogram.numpy()
        lo, hi = _F32(self.min_val.numpy()), _F32(self.max_val.numpy())
        width = (hi - lo) / _F32(self.bins)
        total = float(hist.sum())
        csum = np.cumsum(hist, dtype=_F32)
        alpha, beta, start, end, norm_min = 0.0, 1.0, 0, self.bins - 1, float("inf")
        while alpha < beta:
            next_alpha, next_beta = alpha + 1e-5, beta - 1e-5
            left, right = start, end
            while left < end and csum[left] < next_alpha * total:
                left += 1
            while right > start and csum[right] > next_beta * total:
                right -= 1
            next_start, next_end = start, end
            if (left - start) > (end - right):
                next_start, alpha = left, next_alpha
            else:
                next_end, beta = right, next_beta
            if next_start == start and next_end == end:
                continue
            err = self._quantization_error(next_start, next_end)
            if err > norm_min:
                break
            norm_min, start, end = err, next_start, next_end
        return _F32(lo + width * _F32(start)), _F32(lo + width * _F32(end + 1))

    def calculate_qparams(self):
        if np.isinf(self.min_val.numpy()) and np.isinf(self.max_val.numpy()):
            return (_make(np.ones(1, _F32), as_dtype("float32"), _cpu()),
                    _make(np.zeros(1, np.int64), as_dtype("int64"), _cpu()))
        new_min, new_max = self._search()
        return self._calculate_qparams(np.asarray(new_min), np.asarray(new_max))

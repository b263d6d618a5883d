"""FractionalMaxPool2d / FractionalMaxPool3d: max pooling over pseudo-random windows (Graham, 2014)."""

from __future__ import annotations

from engine.nn.functional import window_max as _F
from engine.nn.modules.module import Module


class _FractionalMaxPoolNd(Module):
    _dims = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None):
        super().__init__()
        n = self._dims
        self.kernel_size = (kernel_size,) * n if isinstance(kernel_size, int) else tuple(kernel_size)
        self.output_size = (output_size,) * n if isinstance(output_size, int) else output_size
        self.output_ratio = (output_ratio,) * n if isinstance(output_ratio, int | float) else output_ratio
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        if output_size is None and output_ratio is None:
            raise ValueError(f"FractionalMaxPool{n}d requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):
        pool = _F.fractional_max_pool2d if self._dims == 2 else _F.fractional_max_pool3d
        return pool(input, self.kernel_size, self.output_size, self.output_ratio, self.return_indices,
                    _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """Fractional max pooling of (N, C, H, W); ``_random_samples`` (N, C, 2) fixes the windows."""

    _dims = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """Fractional max pooling of (N, C, T, H, W); ``_random_samples`` (N, C, 3) fixes the windows."""

    _dims = 3


__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d"]

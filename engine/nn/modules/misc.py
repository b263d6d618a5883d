"""Shape and distance layers: padding, Upsample, PixelShuffle, ChannelShuffle, CosineSimilarity, PairwiseDistance."""

from __future__ import annotations

from engine.nn import functional as F
from engine.nn.modules.module import Module


def _ntuple(padding, n: int) -> tuple:
    return (padding,) * n if isinstance(padding, int) else tuple(padding)


class _PadNd(Module):
    _mode = "constant"
    _dims = 2

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        self.padding = _ntuple(padding, 2 * self._dims)
        self.value = value

    def forward(self, input):
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        if type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ConstantPad1d(_PadNd):
    """Pad the last dim with a constant."""

    _dims = 1

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ConstantPad2d(_PadNd):
    """Pad the last two dims with a constant."""

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ZeroPad1d(_PadNd):
    """Pad the last dim with zeros."""

    _dims = 1


class ZeroPad2d(_PadNd):
    """Pad the last two dims with zeros."""


class ReflectionPad1d(_PadNd):
    """Pad the last dim by reflection."""

    _mode = "reflect"
    _dims = 1


class ReflectionPad2d(_PadNd):
    """Pad the last two dims by reflection."""

    _mode = "reflect"


class ReplicationPad1d(_PadNd):
    """Pad the last dim by repeating the edge."""

    _mode = "replicate"
    _dims = 1


class ReplicationPad2d(_PadNd):
    """Pad the last two dims by repeating the edge."""

    _mode = "replicate"


class ConstantPad3d(_PadNd):
    """Pad the last three dims with a constant."""

    _dims = 3

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ZeroPad3d(_PadNd):
    """Pad the last three dims with zeros."""

    _dims = 3


class ReflectionPad3d(_PadNd):
    """Pad the last three dims by reflection."""

    _mode = "reflect"
    _dims = 3


class ReplicationPad3d(_PadNd):
    """Pad the last three dims by repeating the edge."""

    _mode = "replicate"
    _dims = 3


class CircularPad1d(_PadNd):
    """Pad the last dim by wrapping around."""

    _mode = "circular"
    _dims = 1


class CircularPad2d(_PadNd):
    """Pad the last two dims by wrapping around."""

    _mode = "circular"


class CircularPad3d(_PadNd):
    """Pad the last three dims by wrapping around."""

    _mode = "circular"
    _dims = 3


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor`` with nearest or (bi)linear interpolation."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        self.scale_factor: float | tuple[float, ...] | None
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """2-d nearest-neighbour upsampling (``Upsample(mode='nearest')``)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """2-d bilinear upsampling with ``align_corners=True``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class ChannelShuffle(Module):
    """Interleave the channels of ``groups`` groups: (N, g*k, *) -> (N, k*g, *)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class PixelShuffle(Module):
    """(*, C r², H, W) -> (*, C, H r, W r)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r², H, W)."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class CosineSimilarity(Module):
    """Cosine similarity of two inputs along ``dim``."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """p-norm distance between rows of two inputs."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)

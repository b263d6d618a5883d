"""``CrossMapLRN2d``: Lua Torch's cross-channel LRN, with torch's exact (legacy) forward and backward.

``scale_c = k + alpha / size * sum of x_j^2 over torch's running channel window`` and ``y = x * scale^-beta``.
NOTE: torch's window recurrence never drops channel 0 and its backward uses the symmetric window of
``size`` channels; both are reproduced as they are, so values and gradients equal torch's.
"""

from __future__ import annotations

from engine.autograd.function import Function
from engine.creation import tensor
from engine.nn.modules.module import Module
from engine.ops.reduction import cumsum
from engine.ops.shape import cat


def _prefix_sums(x):
    """P[:, k] = sum of x[:, :k] over channels, k = 0..C (a zero channel prepended)."""
    return cat([x[:, :1] * 0, cumsum(x, 1)], 1)


def _channels(index: list[int], device):
    return tensor(index, device=device)


class _CrossMapLRN2d(Function):
    @staticmethod
    def forward(ctx, input, size: int, alpha: float, beta: float, k: float):
        channels = input.shape[1]
        pre_pad = int((size - 1) / 2 + 1)
        sums = _prefix_sums(input * input)
        # torch's recurrence: channel c sums x_j^2 for j <= c + pre_pad - 1, minus j in 1 .. c - pre_pad
        high = [min(c + pre_pad, channels) for c in range(channels)]
        low = [max(c - pre_pad + 1, 1) for c in range(channels)]
        dropped = (sums.index_select(1, _channels(low, input.device))
                   - sums.index_select(1, _channels([1] * channels, input.device)))
        window = sums.index_select(1, _channels(high, input.device)) - dropped
        scale = window * (alpha / size) + k
        output = input * scale ** (-beta)
        ctx.save_for_backward(input, output, scale)
        ctx.params = (size, alpha, beta)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, output, scale = ctx.saved_tensors
        size, alpha, beta = ctx.params
        channels = input.shape[1]
        inverse_pre_pad = int(size - (size - 1) / 2)
        ratios = _prefix_sums(grad_output * output / scale)
        high = [min(max(c + size - inverse_pre_pad, 0), channels) for c in range(channels)]
        low = [min(max(c - inverse_pre_pad, 0), channels) for c in range(channels)]
        accum = (ratios.index_select(1, _channels(high, input.device))
                 - ratios.index_select(1, _channels(low, input.device)))
        grad_input = scale ** (-beta) * grad_output - input * accum * (2 * alpha * beta / size)
        return grad_input, None, None, None, None


class CrossMapLRN2d(Module):
    """Local response normalization across channels of a 4-D input (N, C, H, W), as ``torch.nn.CrossMapLRN2d``.

    Example:
        >>> nn.CrossMapLRN2d(3)(engine.randn(2, 4, 5, 5)).shape
        engine.Size([2, 4, 5, 5])
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1) -> None:
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        if input.dim() != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.dim()}D instead.")
        return _CrossMapLRN2d.apply(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"

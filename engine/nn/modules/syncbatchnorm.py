"""``SyncBatchNorm``: BatchNorm whose training statistics are reduced over a process group, as ``torch.nn``.

With ``engine.distributed`` initialized and more than one rank in ``process_group`` (default: the world),
training mode normalizes with the mean and variance of the global batch (every rank's samples): the per-channel
sums are all-reduced, and so are their gradients in backward. Otherwise it is plain ``BatchNorm``. Unlike torch
it also syncs CPU tensors (the MPI backend).
"""

from __future__ import annotations

from engine.autograd.function import Function
from engine.autograd.grad_mode import no_grad
from engine.creation import tensor
from engine.dtypes import float64
from engine.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(Function):
    """Differentiable sum over the ranks: the gradient of each rank's input is the sum of every rank's grad."""

    @staticmethod
    def forward(ctx, input, group):
        from engine.distributed import all_reduce

        ctx.group = group
        out = input.clone()
        all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        from engine.distributed import all_reduce

        out = grad.clone()
        all_reduce(out, group=ctx.group)
        return out, None


def _world_size(group) -> int:
    from engine import distributed as dist

    return dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over (N, C, *) with the statistics of the whole distributed batch.

    Example:
        >>> model = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
        >>> type(model[1]).__name__
        'SyncBatchNorm'
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _check_non_zero_input_channels(self, input) -> None:
        if input.size(1) == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")

    def forward(self, input):
        self._check_input_dim(input)
        self._check_non_zero_input_channels(input)
        if not (self.training and _world_size(self.process_group) > 1):
            return super().forward(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        return self._synced(input, factor)

    def _synced(self, input, factor: float):
        """Normalize by the global batch's per-channel mean and biased variance (two all-reduced sums)."""
        from engine.distributed import all_reduce

        axes = (0, *range(2, input.dim()))
        shape = [1, input.shape[1]] + [1] * (input.dim() - 2)
        count = tensor(float(input.numel() // input.shape[1]), dtype=float64)
        all_reduce(count, group=self.process_group)
        n = float(count.item())
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got {int(n)} over the group")
        mean = _AllReduceSum.apply(input.sum(axes), self.process_group) / n
        centered = input - mean.reshape(shape)
        var = _AllReduceSum.apply((centered * centered).sum(axes), self.process_group) / n
        if self.track_running_stats and self.running_mean is not None:
            with no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach() * factor)
                self.running_var.mul_(1 - factor).add_(var.detach() * (factor * n / (n - 1)))
        out = centered * (var + self.eps).rsqrt().reshape(shape)
        if self.weight is not None:
            out = out * self.weight.reshape(shape)
        if self.bias is not None:
            out = out + self.bias.reshape(shape)
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Replace every ``BatchNorm*d`` in ``module`` by a ``SyncBatchNorm`` sharing its parameters and stats."""
        output = module
        if isinstance(module, _BatchNorm):
            output = cls(module.num_features, module.eps, module.momentum, module.affine,
                         module.track_running_stats, process_group)
            if module.affine:
                output.weight = module.weight
                output.bias = module.bias
            output.running_mean = module.running_mean
            output.running_var = module.running_var
            output.num_batches_tracked = module.num_batches_tracked
            output.training = module.training
            if hasattr(module, "qconfig"):
                output.qconfig = module.qconfig
        for name, child in module.named_children():
            output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return output


"""``engine.utils.data.distributed``, as ``torch.utils.data.distributed``: the ``DistributedSampler``."""

from engine.utils.data.sampler import DistributedSampler

__all__ = ["DistributedSampler"]

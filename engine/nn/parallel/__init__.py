"""Data parallelism across processes, as ``torch.nn.parallel``."""

from engine.nn.parallel.data_parallel import DataParallel
from engine.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]

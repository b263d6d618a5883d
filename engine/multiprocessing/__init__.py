"""Process helpers, as ``torch.multiprocessing``: ``spawn`` for scripts that start their own ranks."""

from engine.multiprocessing.spawn import ProcessContext, ProcessExitedException, ProcessRaisedException, spawn

__all__ = ["ProcessContext", "ProcessExitedException", "ProcessRaisedException", "spawn"]

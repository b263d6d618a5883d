"""``engine.set_num_threads`` / ``get_num_threads``: the CPU threads NumPy's BLAS and OpenMP use.

The engine's CPU work runs in NumPy, whose matmuls and reductions go to a BLAS (OpenBLAS, MKL);
``threadpoolctl`` sets and reads those thread pools, as ``torch.set_num_threads`` sets ATen's.
"""

from __future__ import annotations

import os

_limits = None  # the active threadpoolctl limiter (kept alive so the limit holds)


def set_num_threads(num: int) -> None:
    """Use ``num`` threads for intra-op parallelism (BLAS and OpenMP pools) from now on.

    Example:
        >>> engine.set_num_threads(1); engine.get_num_threads()  # doctest: +SKIP
        1
    """
    global _limits
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(limits=num)


def get_num_threads() -> int:
    """The number of threads intra-op work uses: the largest BLAS/OpenMP pool, else the usable CPUs."""
    from threadpoolctl import threadpool_info

    sizes = [int(pool.get("num_threads") or 0) for pool in threadpool_info()]
    if sizes and max(sizes) > 0:
        return max(sizes)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


__all__ = ["get_num_threads", "set_num_threads"]

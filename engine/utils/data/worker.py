"""DataLoader worker processes: ``get_worker_info`` and the loop each worker runs."""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass

import numpy as np

from engine.utils.data.fetch import make_fetcher


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker knows about itself: ``id``, ``num_workers``, ``seed`` and its copy of ``dataset``."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """This worker's ``WorkerInfo`` inside a DataLoader worker process; None in the main process.

    Example:
        >>> class Shards(IterableDataset):  # doctest: +SKIP
        ...     def __iter__(self):
        ...         info = get_worker_info()
        ...         start, step = (0, 1) if info is None else (info.id, info.num_workers)
        ...         return iter(range(start, 100, step))
    """
    return _worker_info


class IterableEnd:
    """Sent by a worker whose iterable dataset is exhausted."""

    def __init__(self, worker_id: int):
        self.worker_id = worker_id


class WorkerError:
    """An exception raised in a worker, carried back as text and re-raised in the main process."""

    def __init__(self, exc: BaseException, worker_id: int):
        self.exc_type = type(exc)
        self.message = (f"Caught {type(exc).__name__} in DataLoader worker process {worker_id}.\nOriginal "
                        + "".join(traceback.format_exception(exc)))

    def reraise(self):
        try:
            error = self.exc_type(self.message)
        except Exception:  # an exception type that needs other arguments
            error = RuntimeError(self.message)
        raise error


def worker_loop(dataset, kind: str, index_queue, result_queue, collate_fn, auto_collation: bool, drop_last: bool,
                base_seed: int, init_fn, worker_id: int, num_workers: int) -> None:
    """Seed, run ``worker_init_fn``, then answer ``(task, indices)`` requests until told to stop (None)."""
    global _worker_info
    import engine

    seed = base_seed + worker_id
    engine.manual_seed(seed)
    random.seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    failed = None
    try:
        if init_fn is not None:
            init_fn(worker_id)
        fetcher = make_fetcher(kind, dataset, auto_collation, collate_fn, drop_last)
    except Exception as exc:
        failed = WorkerError(exc, worker_id)
    exhausted = False
    while True:
        try:
            request = index_queue.get()
        except KeyboardInterrupt:
            continue
        if request is None:
            break
        task, index = request
        if failed is not None:
            result_queue.put((task, failed))
            failed = None
            continue
        if exhausted:
            result_queue.put((task, IterableEnd(worker_id)))
            continue
        try:
            data = fetcher.fetch(index)
        except StopIteration:
            exhausted = True
            data = IterableEnd(worker_id)
        except Exception as exc:
            data = WorkerError(exc, worker_id)
        result_queue.put((task, data))

"""``DataLoader``: batches from a dataset, in the main process or in worker processes."""

from __future__ import annotations

import itertools
import multiprocessing
import queue

from engine.utils.data.collate import default_collate, default_convert
from engine.utils.data.dataset import IterableDataset
from engine.utils.data.fetch import make_fetcher
from engine.utils.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from engine.utils.data.worker import IterableEnd, WorkerError, worker_loop

_POLL_SECONDS = 5.0


class _InfiniteConstantSampler(Sampler):
    """The "sampler" of an iterable dataset: None forever (the dataset decides when to stop)."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Iterate over a dataset in (optionally shuffled) batches, as ``torch.utils.data.DataLoader``.

    Args:
        dataset: a map-style ``Dataset`` (``__getitem__``/``__len__``) or an ``IterableDataset``.
        batch_size: samples per batch; None turns batching off. shuffle: reshuffle every epoch.
        sampler / batch_sampler: a custom index order / custom batches (exclusive with shuffle).
        num_workers: worker processes that load batches (0 loads in the main process); batches
            come back in order. collate_fn: merges samples (``default_collate``).
        drop_last: drop the last incomplete batch. generator: the RNG behind shuffling and worker seeds.
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding.
        pin_memory, prefetch_factor, persistent_workers, timeout: as in PyTorch.

    Example:
        >>> ds = TensorDataset(engine.arange(10.0), engine.arange(10))
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True, generator=engine.Generator().manual_seed(0))
        >>> [len(y) for x, y in loader]
        [4, 4, 2]
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. Let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self.generator = generator
        self._kind = "iterable" if isinstance(dataset, IterableDataset) else "map"
        if self._kind == "iterable":
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None:
            if self._kind == "iterable":
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.collate_fn = collate_fn

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        return _MultiProcessIter(self)

    def __len__(self) -> int:
        if self._kind == "iterable":
            length = len(self.dataset)
            if self.batch_size is not None:
                return length // self.batch_size if self.drop_last else -(-length // self.batch_size)
            return length
        return len(self._index_sampler)


def _base_seed(generator) -> int:
    """A fresh seed per epoch for the workers, drawn like PyTorch from the loader's generator."""
    from engine.random import default_generator

    return (default_generator if generator is None else generator).seed_draw()


class _BaseIter:
    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._base_seed = _base_seed(loader.generator)
        self._sampler_iter = iter(loader._index_sampler)
        self._num_yielded = 0

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)


class _SingleProcessIter(_BaseIter):
    """Load batches in the calling process."""

    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._fetcher = make_fetcher(loader._kind, loader.dataset, loader._auto_collation, loader.collate_fn,
                                     loader.drop_last)

    def __next__(self):
        index = next(self._sampler_iter)
        data = self._fetcher.fetch(index)
        self._num_yielded += 1
        return data


class _MultiProcessIter(_BaseIter):
    """Load batches in ``num_workers`` processes; tasks go out round-robin and come back in order."""

    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        context = loader.multiprocessing_context
        if context is None:
            context = multiprocessing.get_context()
        elif isinstance(context, str):
            context = multiprocessing.get_context(context)
        self._n = loader.num_workers
        self._timeout = loader.timeout
        self._results = context.Queue()
        self._index_queues = []
        self._workers = []
        for worker_id in range(self._n):
            index_queue = context.Queue()
            index_queue.cancel_join_thread()
            worker = context.Process(
                target=worker_loop, daemon=True,
                args=(loader.dataset, loader._kind, index_queue, self._results, loader.collate_fn,
                      loader._auto_collation, loader.drop_last, self._base_seed, loader.worker_init_fn,
                      worker_id, self._n))
            worker.start()
            self._index_queues.append(index_queue)
            self._workers.append(worker)
        self._alive = [True] * self._n
        self._cycle = itertools.cycle(range(self._n))
        self._send_idx = 0
        self._rcvd_idx = 0
        self._tasks: dict[int, tuple] = {}
        self._shutdown = False
        for _ in range(loader.prefetch_factor * self._n):
            self._put_task()

    def _put_task(self) -> None:
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._n):
            worker_id = next(self._cycle)
            if self._alive[worker_id]:
                break
        else:
            return
        self._index_queues[worker_id].put((self._send_idx, index))
        self._tasks[self._send_idx] = (worker_id,)
        self._send_idx += 1

    def __next__(self):
        while True:
            while self._rcvd_idx < self._send_idx:  # skip tasks that went to exhausted workers
                info = self._tasks[self._rcvd_idx]
                if len(info) == 2 or self._alive[info[0]]:
                    break
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                self._shutdown_workers()
                raise StopIteration
            if len(self._tasks[self._rcvd_idx]) == 2:
                data = self._tasks.pop(self._rcvd_idx)[1]
                return self._deliver(data)
            task, data = self._get_result()
            if isinstance(data, IterableEnd):
                self._alive[data.worker_id] = False
                self._put_task()
                continue
            if task != self._rcvd_idx:
                self._tasks[task] += (data,)
                continue
            del self._tasks[task]
            return self._deliver(data)

    def _deliver(self, data):
        self._rcvd_idx += 1
        self._put_task()
        if isinstance(data, WorkerError):
            self._shutdown_workers()
            data.reraise()
        self._num_yielded += 1
        return data

    def _get_result(self):
        waited = 0.0
        while True:
            try:
                return self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                waited += _POLL_SECONDS
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) exited "
                                       "unexpectedly") from None
                if self._timeout and waited >= self._timeout:
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None

    def _shutdown_workers(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        for index_queue in self._index_queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
        for worker in self._workers:
            worker.join(timeout=_POLL_SECONDS)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for q in [*self._index_queues, self._results]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        if hasattr(self, "_shutdown"):
            self._shutdown_workers()

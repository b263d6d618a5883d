"""``spawn(fn, args, nprocs)``: run ``fn(i, *args)`` in ``nprocs`` fresh processes, as ``torch.multiprocessing``.

If one process raises or dies, the others are stopped and the parent raises naming it.

Example:
    >>> def work(rank, world):
    ...     dist.init_process_group("gloo", rank=rank, world_size=world)   # MASTER_ADDR/PORT set
    >>> spawn(work, args=(2,), nprocs=2)
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import traceback
from typing import Any


class ProcessException(Exception):
    def __init__(self, msg: str, error_index: int, pid: int):
        super().__init__(msg)
        self.msg = msg
        self.error_index = error_index
        self.pid = pid


class ProcessRaisedException(ProcessException):
    """A spawned process raised; the message holds its traceback."""


class ProcessExitedException(ProcessException):
    """A spawned process died (non-zero exit or a signal) without raising."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int, signal_name: str | None = None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code = exit_code
        self.signal_name = signal_name


def _wrap(fn, i: int, args: tuple, error_queue) -> None:
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass
    except Exception:
        error_queue.put(traceback.format_exc())
        raise SystemExit(1) from None


class ProcessContext:
    """The spawned processes; ``join()`` waits for them and raises when one fails."""

    def __init__(self, processes: list, error_queues: list):
        self.processes = processes
        self.error_queues = error_queues

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def join(self, timeout: float | None = None) -> bool:
        """True when every process has ended successfully; raises on the first failure."""
        sentinels = {p.sentinel: i for i, p in enumerate(self.processes) if p.exitcode is None}
        if sentinels:
            ready = multiprocessing.connection.wait(list(sentinels), timeout=timeout)
        else:
            ready = []
        failed = None
        for s in ready:
            i = sentinels[s]
            self.processes[i].join()
            if self.processes[i].exitcode != 0 and failed is None:
                failed = i
        if failed is None:
            return all(p.exitcode == 0 for p in self.processes)
        for p in self.processes:
            if p.is_alive():
                p.terminate()
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        proc = self.processes[failed]
        queue = self.error_queues[failed]
        if not queue.empty():
            tb = queue.get()
            raise ProcessRaisedException(f"\n\n-- Process {failed} terminated with the following error:\n{tb}",
                                         failed, proc.pid)
        code = proc.exitcode
        if code < 0:
            name = signal.Signals(-code).name
            raise ProcessExitedException(f"process {failed} terminated with signal {name}", failed, proc.pid,
                                         code, name)
        raise ProcessExitedException(f"process {failed} terminated with exit code {code}", failed, proc.pid, code)


def start_processes(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False,
                    start_method: str = "spawn"):
    ctx: Any = multiprocessing.get_context(start_method)
    processes, queues = [], []
    for i in range(nprocs):
        queue = ctx.SimpleQueue()
        p = ctx.Process(target=_wrap, args=(fn, i, tuple(args), queue), daemon=daemon)
        p.start()
        processes.append(p)
        queues.append(queue)
    context = ProcessContext(processes, queues)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs: int = 1, join: bool = True, daemon: bool = False, start_method: str = "spawn"):
    """Run ``fn(i, *args)`` for i in range(nprocs), each in a new process (``start_method`` as multiprocessing)."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)

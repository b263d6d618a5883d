"""Process groups: the default group's state, ``ReduceOp``, ``Work`` (an async op's handle)."""

from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """How a reduction combines the ranks' tensors (PyTorch's names)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"

    def __repr__(self) -> str:
        return f"<ReduceOp.{self.name}>"


class Backend(str):
    """Backend names as PyTorch spells them (``Backend.GLOO == "gloo"``)."""

    GLOO = "gloo"
    MPI = "mpi"
    NCCL = "nccl"
    UNDEFINED = "undefined"

    def __new__(cls, name: str):
        value = str(name).lower()
        if value not in (cls.GLOO, cls.MPI, cls.NCCL):
            raise ValueError(f"Unknown backend {name!r}: engine.distributed supports 'gloo' and 'mpi' (CPU, on MPI) "
                             "and 'nccl' (GPU)")
        return super().__new__(cls, value)


class Work:
    """The handle an ``async_op=True`` collective returns; ``wait()`` finishes it (then the tensor holds the result)."""

    def __init__(self, requests=(), finish=None):
        self._requests = list(requests)
        self._finish = finish
        self._done = False
        self.source = None  # recv: the MPI status that names the sender

    def is_completed(self) -> bool:
        if self._done:
            return True
        if all(r.Test() for r in self._requests):
            self.wait()
        return self._done

    def is_success(self) -> bool:
        return self.is_completed()

    def wait(self, timeout=None) -> bool:
        if not self._done:
            for r in self._requests:
                r.Wait()
            self._done = True
            if self._finish is not None:
                self._finish()
        return True

    def get_future(self):
        raise RuntimeError("Work.get_future is not supported by engine.distributed; call wait()")


class ProcessGroup:
    """A set of ranks and the communicator joining them (built by ``init_process_group``/``new_group``)."""

    def __init__(self, backend: str, rank: int, size: int, ranks: list[int]):
        self._backend = backend
        self._rank = rank
        self._size = size
        self._ranks = ranks  # global ranks, in group-rank order

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    def name(self) -> str:
        return self._backend

    def __repr__(self) -> str:
        return f"ProcessGroup(backend={self._backend!r}, rank={self._rank}, size={self._size})"

    # What a backend implements, on its arrays (NumPy for MPI, CuPy for NCCL); group ranks throughout.
    def _missing(self, op: str):
        return NotImplementedError(f"engine.distributed.{op} is not supported by the {self._backend} backend")

    def allreduce(self, a, op: ReduceOp) -> Work:
        raise self._missing("all_reduce")

    def reduce(self, a, dst: int, op: ReduceOp) -> Work:
        raise self._missing("reduce")

    def reduce_scatter(self, out, inp, op: ReduceOp) -> Work:
        raise self._missing("reduce_scatter_tensor")

    def broadcast(self, a, src: int) -> Work:
        raise self._missing("broadcast")

    def allgather(self, out, inp) -> Work:
        raise self._missing("all_gather")

    def gather(self, out, inp, dst: int) -> Work:
        raise self._missing("gather")

    def scatter(self, out, inp, src: int) -> Work:
        raise self._missing("scatter")

    def alltoall(self, out, inp, out_rows, in_rows) -> Work:
        raise self._missing("all_to_all_single")

    def send(self, a, dst: int, tag: int) -> Work:
        raise self._missing("send")

    def recv(self, a, src: int | None, tag: int) -> Work:
        raise self._missing("recv")

    def barrier(self) -> Work:
        raise self._missing("barrier")

    def split(self, ranks: list[int], global_ranks: list[int]) -> ProcessGroup | None:
        raise self._missing("new_group")

    def destroy(self) -> None:
        pass


class GroupMember:
    WORLD: ProcessGroup | None = None
    NON_GROUP_MEMBER = object()


class _State:
    default_pg: ProcessGroup | None = None
    store = None
    generation = 0
    groups: list = []


state = _State()


def default_group(caller: str) -> ProcessGroup:
    if state.default_pg is None:
        raise ValueError(f"engine.distributed.{caller}: Default process group has not been initialized, "
                         "please make sure to call init_process_group.")
    return state.default_pg


def resolve(group, caller: str) -> ProcessGroup:
    if group is None or group is GroupMember.WORLD:
        return default_group(caller)
    if group is GroupMember.NON_GROUP_MEMBER:
        raise ValueError(f"engine.distributed.{caller}: this rank is not a member of the group")
    return group

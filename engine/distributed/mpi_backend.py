"""The CPU backend ("gloo" and "mpi"): collectives on NumPy arrays through mpi4py (MPICH).

Ranks started as plain processes (the launcher, ``spawn``, a user's own) each initialise MPI as a
singleton, then join one communicator with MPI's dynamic-process calls: rank 0 opens a port and
publishes its name in the rendezvous store; ranks 1..N-1 connect in order and each join is merged
into the growing intracommunicator. Ranks already under ``mpiexec`` use its COMM_WORLD directly.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.distributed.process_group import ProcessGroup, ReduceOp, Work

_REDUCE_AS = {np.dtype(np.float16): np.float32}


def mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("engine.distributed's CPU backend needs mpi4py and an MPI: "
                           "pip install 'kiln[distributed]' (mpi4py + the mpich wheel)") from e
    return MPI


def available() -> bool:
    try:
        mpi()
    except RuntimeError:
        return False
    return True


def connect_world(store, rank: int, world_size: int, key: str):
    """One intracommunicator over ``world_size`` singleton processes, ranks in order (see module doc)."""
    MPI = mpi()
    world = MPI.COMM_WORLD
    if world.Get_size() == world_size and world_size > 1:
        return world.Dup()
    comm = MPI.COMM_SELF.Dup()
    if world_size == 1:
        return comm
    if rank == 0:
        port = MPI.Open_port()
        store.set(f"{key}/port", port)
    else:
        port = store.get(f"{key}/port").decode()
        store.wait([f"{key}/joined/{rank - 1}"])
        inter = MPI.COMM_SELF.Connect(port, root=0)
        comm = inter.Merge(high=True)
        inter.Free()
    store.set(f"{key}/joined/{rank}", "1")
    for _ in range(comm.Get_size(), world_size):
        inter = comm.Accept(port, root=0)
        merged = inter.Merge(high=False)
        inter.Free()
        comm.Free()
        comm = merged
    if rank == 0:
        MPI.Close_port(port)
    if comm.Get_rank() != rank or comm.Get_size() != world_size:
        raise RuntimeError(f"MPI rendezvous joined rank {rank} as {comm.Get_rank()} of {comm.Get_size()}")
    return comm


def _op(op: ReduceOp):
    MPI = mpi()
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}[op]


def _host(a):
    if not isinstance(a, np.ndarray):
        raise TypeError("engine.distributed: the gloo/mpi backend takes CPU tensors; CUDA tensors need "
                        "init_process_group('nccl') (or move them with .cpu())")
    return a


def _bytes(a: np.ndarray):
    return [_host(a).reshape(-1).view(np.uint8), mpi().BYTE]


class MPIProcessGroup(ProcessGroup):
    """A process group over an mpi4py communicator; every method takes C-contiguous NumPy arrays."""

    def __init__(self, backend: str, comm, ranks: list[int]):
        super().__init__(backend, comm.Get_rank(), comm.Get_size(), ranks)
        self.comm = comm

    def _reduce_buffer(self, a: np.ndarray, op: ReduceOp, caller: str):
        _host(a)
        if op is ReduceOp.AVG and a.dtype.kind not in "fc" and a.dtype.name != "bfloat16":
            raise ValueError(f"engine.distributed.{caller}: ReduceOp.AVG needs a floating-point tensor, got {a.dtype}")
        if a.dtype == np.bool_:
            if op in (ReduceOp.SUM, ReduceOp.MAX):
                return a.view(np.uint8), ReduceOp.MAX
            return a.view(np.uint8), ReduceOp.MIN
        if a.dtype in _REDUCE_AS or a.dtype.name == "bfloat16":
            return a.astype(np.float32), op
        return a, op

    def _finish(self, a, work, op):
        def finish():
            if op is ReduceOp.AVG:
                np.divide(work, self._size, out=work, casting="unsafe")
            if work is not a and work.base is not a:
                a[...] = work.astype(a.dtype)
        return finish

    def allreduce(self, a: np.ndarray, op: ReduceOp) -> Work:
        work, mop = self._reduce_buffer(a, op, "all_reduce")
        req = self.comm.Iallreduce(mpi().IN_PLACE, work, op=_op(mop))
        return Work([req], self._finish(a, work, op))

    def reduce(self, a: np.ndarray, dst: int, op: ReduceOp) -> Work:
        work, mop = self._reduce_buffer(a, op, "reduce")
        if self._rank == dst:
            req = self.comm.Ireduce(mpi().IN_PLACE, work, op=_op(mop), root=dst)
            return Work([req], self._finish(a, work, op))
        return Work([self.comm.Ireduce(work, None, op=_op(mop), root=dst)])

    def reduce_scatter(self, out: np.ndarray, inp: np.ndarray, op: ReduceOp) -> Work:
        send, mop = self._reduce_buffer(inp, op, "reduce_scatter_tensor")
        recv = np.empty(out.shape, send.dtype)
        req = self.comm.Ireduce_scatter_block(send, recv, op=_op(mop))
        return Work([req, _Keep(send)], self._finish(out, recv, op))

    def broadcast(self, a: np.ndarray, src: int) -> Work:
        return Work([self.comm.Ibcast(_bytes(a), root=src)])

    def allgather(self, out: np.ndarray, inp: np.ndarray) -> Work:
        return Work([self.comm.Iallgather(_bytes(inp), _bytes(out))])

    def gather(self, out: np.ndarray | None, inp: np.ndarray, dst: int) -> Work:
        return Work([self.comm.Igather(_bytes(inp), None if out is None else _bytes(out), root=dst)])

    def scatter(self, out: np.ndarray, inp: np.ndarray | None, src: int) -> Work:
        return Work([self.comm.Iscatter(None if inp is None else _bytes(inp), _bytes(out), root=src)])

    def alltoall(self, out: np.ndarray, inp: np.ndarray, out_rows, in_rows) -> Work:
        if out_rows is None and in_rows is None:
            return Work([self.comm.Ialltoall(_bytes(inp), _bytes(out))])
        row_out = out[0].nbytes if out.ndim and len(out) else 0
        row_in = inp[0].nbytes if inp.ndim and len(inp) else 0
        n = self._size
        out_rows = out_rows or [len(out) // n] * n
        in_rows = in_rows or [len(inp) // n] * n
        send_counts = [r * row_in for r in in_rows]
        recv_counts = [r * row_out for r in out_rows]
        send = [inp.reshape(-1).view(np.uint8), (send_counts, list(np.cumsum([0, *send_counts[:-1]]))), mpi().BYTE]
        recv = [out.reshape(-1).view(np.uint8), (recv_counts, list(np.cumsum([0, *recv_counts[:-1]]))), mpi().BYTE]
        return Work([self.comm.Ialltoallv(send, recv)])

    def send(self, a: np.ndarray, dst: int, tag: int) -> Work:
        return Work([self.comm.Isend(_bytes(a), dest=dst, tag=tag)])

    def recv(self, a: np.ndarray, src: int | None, tag: int) -> Work:
        MPI = mpi()
        status = MPI.Status()
        if src is None:
            # NOTE: MPICH does not match MPI_ANY_SOURCE reliably across connected singletons; poll each peer
            req: object = _AnySource(self.comm, _bytes(a), tag, status)
        else:
            req = _StatusRequest(self.comm.Irecv(_bytes(a), source=src, tag=tag), status)
        work = Work([req])
        work.source = status
        return work

    def barrier(self) -> Work:
        return Work([self.comm.Ibarrier()])

    def split(self, ranks: list[int], global_ranks: list[int]):
        """A sub-communicator over group ranks ``ranks`` (collective over this whole group)."""
        MPI = mpi()
        member = self._rank in ranks
        sub = self.comm.Split(0 if member else MPI.UNDEFINED, ranks.index(self._rank) if member else 0)
        if not member:
            return None
        return MPIProcessGroup(self._backend, sub, global_ranks)

    def destroy(self) -> None:
        if self.comm is not None and self.comm != mpi().COMM_NULL:
            self.comm.Free()
        self.comm = None


class _Keep:
    """Holds a buffer alive until the Work is waited on."""

    def __init__(self, buffer):
        self.buffer = buffer

    def Test(self) -> bool:
        return True

    def Wait(self) -> None:
        pass


class _StatusRequest:
    def __init__(self, req, status):
        self.req, self.status = req, status

    def Test(self) -> bool:
        return self.req.Test(self.status)

    def Wait(self) -> None:
        self.req.Wait(self.status)


class _AnySource:
    """A receive from whichever peer sends first: ``Iprobe`` each peer, then ``Irecv`` from the one found."""

    def __init__(self, comm, buf, tag: int, status):
        self.comm, self.buf, self.tag, self.status = comm, buf, tag, status
        self.req: Any = None

    def Test(self) -> bool:
        if self.req is None:
            for peer in range(self.comm.Get_size()):
                if self.comm.Iprobe(source=peer, tag=self.tag):
                    self.req = self.comm.Irecv(self.buf, source=peer, tag=self.tag)
                    break
            else:
                return False
        return self.req.Test(self.status)

    def Wait(self) -> None:
        delay = 1e-5
        while not self.Test():
            time.sleep(delay)
            delay = min(delay * 2, 1e-3)

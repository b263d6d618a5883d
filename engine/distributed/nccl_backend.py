"""The GPU backend ("nccl"): NCCL through CuPy, one process per GPU, on the tensors' own device memory.

Rank 0 makes the NCCL unique id and publishes it (JSON ints) in the rendezvous store; every rank
then builds its ``NcclCommunicator`` on its device (``device_id``, else LOCAL_RANK). Operations run
on the current CUDA stream, so they are ordered with the kernels around them; ``Work.wait()``
makes the current stream wait for the operation's event.
"""

from __future__ import annotations

import importlib
import json
import os

from engine.distributed.process_group import ProcessGroup, ReduceOp, Work


def _nccl():
    # NOTE: NCCL's bindings, not the array module: backend.py stays the one switch for xp.
    from engine.backend import cupy_or_raise

    cp = cupy_or_raise()
    return cp, importlib.import_module("cupy.cuda.nccl")


def available() -> bool:
    try:
        _, nccl = _nccl()
        return bool(nccl.available) if hasattr(nccl, "available") else True
    except Exception:
        return False


_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
           "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "int64": "NCCL_INT64",
           "bool": "NCCL_UINT8", "bfloat16": "NCCL_BFLOAT16"}
_OPS = {ReduceOp.SUM: "NCCL_SUM", ReduceOp.PRODUCT: "NCCL_PROD", ReduceOp.MIN: "NCCL_MIN",
        ReduceOp.MAX: "NCCL_MAX", ReduceOp.AVG: "NCCL_SUM"}


class _EventRequest:
    def __init__(self, cp):
        self.cp = cp
        self.event = cp.cuda.Event()
        self.event.record(cp.cuda.get_current_stream())

    def Test(self) -> bool:
        return self.event.done

    def Wait(self) -> None:
        self.cp.cuda.get_current_stream().wait_event(self.event)


class NCCLProcessGroup(ProcessGroup):
    """A process group over one ``cupy.cuda.nccl.NcclCommunicator``; methods take C-contiguous CuPy arrays."""

    def __init__(self, comm, rank: int, size: int, ranks: list[int], device: int):
        super().__init__("nccl", rank, size, ranks)
        self.comm = comm
        self.device = device
        self.cp, self.nccl = _nccl()

    @classmethod
    def create(cls, store, rank: int, world_size: int, device_id=None) -> NCCLProcessGroup:
        cp, nccl = _nccl()
        index = getattr(device_id, "index", device_id)
        device = int(index) if index is not None else int(os.environ.get("LOCAL_RANK", "0"))
        cp.cuda.Device(device).use()
        if rank == 0:
            store.set("nccl_unique_id", json.dumps(list(nccl.get_unique_id())))
        uid = tuple(json.loads(store.get("nccl_unique_id")))
        comm = nccl.NcclCommunicator(world_size, uid, rank)
        return cls(comm, rank, world_size, list(range(world_size)), device)

    def _type(self, a, caller: str):
        name = _DTYPES.get(a.dtype.name)
        if name is None or not hasattr(self.nccl, name):
            raise TypeError(f"engine.distributed.{caller}: NCCL has no type for {a.dtype}")
        return getattr(self.nccl, name)

    def _stream(self) -> int:
        return self.cp.cuda.get_current_stream().ptr

    def _work(self, finish=None) -> Work:
        return Work([_EventRequest(self.cp)], finish)

    def _reduce_op(self, op: ReduceOp, a, caller: str):
        if a.dtype.name == "bool" and op not in (ReduceOp.MAX, ReduceOp.MIN, ReduceOp.SUM):
            raise TypeError(f"engine.distributed.{caller}: {op} on bool tensors is not supported")
        if op is ReduceOp.AVG and hasattr(self.nccl, "NCCL_AVG") and a.dtype.kind == "f":
            return self.nccl.NCCL_AVG, False
        return getattr(self.nccl, _OPS[ReduceOp.MAX if a.dtype.name == "bool" else op]), op is ReduceOp.AVG

    def _divide(self, a, needed: bool):
        if not needed:
            return None

        def finish():
            a[...] = a / self._size
        return finish

    def allreduce(self, a, op: ReduceOp) -> Work:
        nop, divide = self._reduce_op(op, a, "all_reduce")
        self.comm.allReduce(a.data.ptr, a.data.ptr, a.size, self._type(a, "all_reduce"), nop, self._stream())
        finish = self._divide(a, divide)
        if finish is not None:
            finish()
        return self._work()

    def reduce(self, a, dst: int, op: ReduceOp) -> Work:
        nop, divide = self._reduce_op(op, a, "reduce")
        self.comm.reduce(a.data.ptr, a.data.ptr, a.size, self._type(a, "reduce"), nop, dst, self._stream())
        if divide and self._rank == dst:
            a[...] = a / self._size
        return self._work()

    def reduce_scatter(self, out, inp, op: ReduceOp) -> Work:
        nop, divide = self._reduce_op(op, inp, "reduce_scatter_tensor")
        self.comm.reduceScatter(inp.data.ptr, out.data.ptr, out.size, self._type(out, "reduce_scatter_tensor"),
                                nop, self._stream())
        if divide:
            out[...] = out / self._size
        return self._work()

    def broadcast(self, a, src: int) -> Work:
        self.comm.broadcast(a.data.ptr, a.data.ptr, a.size, self._type(a, "broadcast"), src, self._stream())
        return self._work()

    def allgather(self, out, inp) -> Work:
        self.comm.allGather(inp.data.ptr, out.data.ptr, inp.size, self._type(inp, "all_gather"), self._stream())
        return self._work()

    def gather(self, out, inp, dst: int) -> Work:
        t = self._type(inp, "gather")
        self.nccl.groupStart()
        if self._rank == dst:
            for r in range(self._size):
                self.comm.recv(out[r].data.ptr, inp.size, t, r, self._stream())
        self.comm.send(inp.data.ptr, inp.size, t, dst, self._stream())
        self.nccl.groupEnd()
        return self._work()

    def scatter(self, out, inp, src: int) -> Work:
        t = self._type(out, "scatter")
        self.nccl.groupStart()
        if self._rank == src:
            for r in range(self._size):
                self.comm.send(inp[r].data.ptr, out.size, t, r, self._stream())
        self.comm.recv(out.data.ptr, out.size, t, src, self._stream())
        self.nccl.groupEnd()
        return self._work()

    def alltoall(self, out, inp, out_rows, in_rows) -> Work:
        n = self._size
        row_in = inp[0].size if inp.ndim and len(inp) else 0
        row_out = out[0].size if out.ndim and len(out) else 0
        in_rows = in_rows or [len(inp) // n] * n
        out_rows = out_rows or [len(out) // n] * n
        flat_in, flat_out = inp.reshape(-1), out.reshape(-1)
        t = self._type(inp, "all_to_all_single")
        self.nccl.groupStart()
        s = o = 0
        for r in range(n):
            self.comm.send(flat_in[s:].data.ptr, in_rows[r] * row_in, t, r, self._stream())
            self.comm.recv(flat_out[o:].data.ptr, out_rows[r] * row_out, t, r, self._stream())
            s += in_rows[r] * row_in
            o += out_rows[r] * row_out
        self.nccl.groupEnd()
        return self._work()

    def send(self, a, dst: int, tag: int) -> Work:
        self.comm.send(a.data.ptr, a.size, self._type(a, "send"), dst, self._stream())
        return self._work()

    def recv(self, a, src: int | None, tag: int) -> Work:
        if src is None:
            raise ValueError("engine.distributed.recv: NCCL needs an explicit src")
        self.comm.recv(a.data.ptr, a.size, self._type(a, "recv"), src, self._stream())
        return self._work()

    def barrier(self) -> Work:
        one = self.cp.zeros(1, self.cp.float32)
        self.allreduce(one, ReduceOp.SUM)
        self.cp.cuda.get_current_stream().synchronize()
        return Work()

    def split(self, ranks: list[int], global_ranks: list[int]):
        raise NotImplementedError("engine.distributed.new_group is not supported on the nccl backend yet")

    def destroy(self) -> None:
        if self.comm is not None:
            self.comm.destroy()
        self.comm = None

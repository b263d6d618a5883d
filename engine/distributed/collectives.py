"""Collectives on engine tensors, in place, as ``torch.distributed``: ``async_op=True`` returns a ``Work``.

``src``/``dst`` are global ranks (as PyTorch); a group maps them to its own ranks.
"""

from __future__ import annotations

from engine.backend import array_module_of
from engine.distributed.process_group import ReduceOp, Work, resolve
from engine.tensor import Tensor


def _check(t, caller: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"engine.distributed.{caller}: expected an engine Tensor, got {type(t).__name__}")


def _array(t: Tensor, caller: str):
    """A C-contiguous array for ``t`` and a function writing it back into ``t`` (bumping its version)."""
    _check(t, caller)
    data = t._data
    contiguous = data.flags.c_contiguous

    def writeback():
        if not contiguous:
            data[...] = buf
        t._vc[0] += 1

    buf = data if contiguous else array_module_of(data).ascontiguousarray(data)
    return buf, writeback


def _run(work: Work, after, async_op: bool):
    inner = work._finish

    def finish():
        if inner is not None:
            inner()
        after()
    work._finish = finish
    if async_op:
        return work
    work.wait()
    return None


def _group_rank(pg, rank: int, caller: str) -> int:
    if rank not in pg._ranks:
        raise ValueError(f"engine.distributed.{caller}: rank {rank} is not part of the group")
    return pg._ranks.index(rank)


def _op(op, caller: str) -> ReduceOp:
    if isinstance(op, ReduceOp):
        return op
    raise ValueError(f"engine.distributed.{caller}: op must be a ReduceOp, got {op!r}")


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` over every rank and leave the result in it on every rank."""
    pg = resolve(group, "all_reduce")
    a, done = _array(tensor, "all_reduce")
    return _run(pg.allreduce(a, _op(op, "all_reduce")), done, async_op)


def broadcast(tensor, src: int, group=None, async_op: bool = False, group_src=None):
    pg = resolve(group, "broadcast")
    a, done = _array(tensor, "broadcast")
    root = group_src if group_src is not None else _group_rank(pg, src, "broadcast")
    return _run(pg.broadcast(a, root), done, async_op)


def reduce(tensor, dst: int, op=ReduceOp.SUM, group=None, async_op: bool = False, group_dst=None):
    pg = resolve(group, "reduce")
    a, done = _array(tensor, "reduce")
    root = group_dst if group_dst is not None else _group_rank(pg, dst, "reduce")
    return _run(pg.reduce(a, root, _op(op, "reduce")), done, async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """Concatenate every rank's ``input_tensor`` along dim 0 (or stack) into ``output_tensor``."""
    pg = resolve(group, "all_gather_into_tensor")
    out, done = _array(output_tensor, "all_gather_into_tensor")
    inp, _ = _array(input_tensor, "all_gather_into_tensor")
    if out.size != inp.size * pg.size() or out.dtype != inp.dtype:
        raise ValueError("all_gather_into_tensor: output must hold world_size inputs of the same dtype, got "
                         f"{list(out.shape)} for inputs {list(inp.shape)} x {pg.size()}")
    return _run(pg.allgather(out, inp), done, async_op)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor``."""
    pg = resolve(group, "all_gather")
    if len(tensor_list) != pg.size():
        raise ValueError(f"all_gather: tensor_list needs {pg.size()} tensors, got {len(tensor_list)}")
    inp, _ = _array(tensor, "all_gather")
    out = array_module_of(inp).empty((pg.size(), *inp.shape), inp.dtype)

    def done():
        for t, part in zip(tensor_list, out, strict=True):
            _check(t, "all_gather")
            t._data[...] = part
            t._vc[0] += 1
    return _run(pg.allgather(out, inp), done, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``input`` over ranks; rank r keeps the r-th of world_size equal chunks (dim 0) in ``output``."""
    pg = resolve(group, "reduce_scatter_tensor")
    out, done = _array(output, "reduce_scatter_tensor")
    inp, _ = _array(input, "reduce_scatter_tensor")
    if inp.size != out.size * pg.size():
        raise ValueError(f"reduce_scatter_tensor: input must be world_size x output, got {list(inp.shape)} "
                         f"for output {list(out.shape)}")
    return _run(pg.reduce_scatter(out, inp, _op(op, "reduce_scatter_tensor")), done, async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op: bool = False):
    pg = resolve(group, "reduce_scatter")
    out, done = _array(output, "reduce_scatter")
    xp = array_module_of(out)
    inp = xp.concatenate([xp.ascontiguousarray(t._data).reshape(-1) for t in input_list])
    if inp.size != out.size * pg.size():
        raise ValueError("reduce_scatter: input_list needs world_size tensors shaped like output")
    return _run(pg.reduce_scatter(out, inp, _op(op, "reduce_scatter")), done, async_op)


def gather(tensor, gather_list=None, dst: int = 0, group=None, async_op: bool = False, group_dst=None):
    """Collect every rank's ``tensor`` into ``gather_list`` on ``dst`` (None elsewhere)."""
    pg = resolve(group, "gather")
    root = group_dst if group_dst is not None else _group_rank(pg, dst, "gather")
    inp, _ = _array(tensor, "gather")
    if pg.rank() != root:
        return _run(pg.gather(None, inp, root), lambda: None, async_op)
    if gather_list is None or len(gather_list) != pg.size():
        raise ValueError(f"gather: the destination rank needs a gather_list of {pg.size()} tensors")
    out = array_module_of(inp).empty((pg.size(), *inp.shape), inp.dtype)

    def done():
        for t, part in zip(gather_list, out, strict=True):
            t._data[...] = part
            t._vc[0] += 1
    return _run(pg.gather(out, inp, root), done, async_op)


def scatter(tensor, scatter_list=None, src: int = 0, group=None, async_op: bool = False, group_src=None):
    """Rank r receives ``scatter_list[r]`` of ``src`` into ``tensor``."""
    pg = resolve(group, "scatter")
    root = group_src if group_src is not None else _group_rank(pg, src, "scatter")
    out, done = _array(tensor, "scatter")
    inp = None
    if pg.rank() == root:
        if scatter_list is None or len(scatter_list) != pg.size():
            raise ValueError(f"scatter: the source rank needs a scatter_list of {pg.size()} tensors")
        xp = array_module_of(out)
        inp = xp.stack([xp.asarray(t._data, out.dtype).reshape(out.shape) for t in scatter_list])
    return _run(pg.scatter(out, inp, root), done, async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None,
                      group=None, async_op: bool = False):
    """Rank r sends its i-th dim-0 chunk of ``input`` to rank i and gets rank i's r-th chunk into ``output``."""
    pg = resolve(group, "all_to_all_single")
    out, done = _array(output, "all_to_all_single")
    inp, _ = _array(input, "all_to_all_single")
    if out.dtype != inp.dtype:
        raise ValueError("all_to_all_single: output and input dtypes differ")
    if output_split_sizes is None and input_split_sizes is None and len(inp) % pg.size():
        raise ValueError(f"all_to_all_single: dim 0 ({len(inp)}) is not divisible by world_size {pg.size()}")
    work = pg.alltoall(out, inp, _sizes(output_split_sizes), _sizes(input_split_sizes))
    return _run(work, done, async_op)


def _sizes(sizes):
    return None if sizes is None or len(sizes) == 0 else [int(s) for s in sizes]


def isend(tensor, dst: int, group=None, tag: int = 0, group_dst=None):
    pg = resolve(group, "isend")
    a, _ = _array(tensor, "isend")
    peer = group_dst if group_dst is not None else _group_rank(pg, dst, "isend")
    return pg.send(a, peer, tag)


def irecv(tensor, src=None, group=None, tag: int = 0, group_src=None):
    pg = resolve(group, "irecv")
    a, done = _array(tensor, "irecv")
    peer = group_src if group_src is not None else (None if src is None else _group_rank(pg, src, "irecv"))
    work = pg.recv(a, peer, tag)
    _run(work, done, True)
    return work


def send(tensor, dst: int, group=None, tag: int = 0, group_dst=None) -> None:
    isend(tensor, dst, group, tag, group_dst).wait()


def recv(tensor, src=None, group=None, tag: int = 0, group_src=None) -> int:
    """Receive into ``tensor``; returns the sender's global rank."""
    pg = resolve(group, "recv")
    work = irecv(tensor, src, group, tag, group_src)
    work.wait()
    return pg._ranks[work.source.Get_source()] if work.source is not None else (src if src is not None else -1)

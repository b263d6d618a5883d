"""Distributed training, as ``torch.distributed``: process groups and collectives on existing libraries.

Backends: "gloo" and "mpi" run on MPI (mpi4py + MPICH) on CPU; "nccl" runs on NCCL through CuPy.
Start ranks with ``python -m engine.distributed.run --nproc-per-node N script.py`` (torchrun's flags).

Example:
    >>> import engine.distributed as dist
    >>> dist.init_process_group("gloo")
    >>> t = engine.ones(3); dist.all_reduce(t); t          # world_size everywhere
"""

from engine.distributed.collectives import (
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    all_to_all_single,
    broadcast,
    gather,
    irecv,
    isend,
    recv,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
    send,
)
from engine.distributed.distributed_c10d import (
    barrier,
    destroy_process_group,
    get_backend,
    get_default_store,
    get_global_rank,
    get_group_rank,
    get_process_group_ranks,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_gloo_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    is_torchelastic_launched,
    new_group,
)
from engine.distributed.objects import all_gather_object, broadcast_object_list, gather_object
from engine.distributed.process_group import Backend, GroupMember, ProcessGroup, ReduceOp, Work
from engine.distributed.store import FileStore, PrefixStore, RedisStore, Store

group = GroupMember

__all__ = ["Backend", "FileStore", "GroupMember", "PrefixStore", "ProcessGroup", "RedisStore", "ReduceOp", "Store",
           "Work", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce", "all_to_all_single",
           "barrier", "broadcast", "broadcast_object_list", "destroy_process_group", "gather", "gather_object",
           "get_backend", "get_default_store", "get_global_rank", "get_group_rank", "get_process_group_ranks",
           "get_rank", "get_world_size", "group", "init_process_group", "irecv", "is_available",
           "is_gloo_available", "is_initialized", "is_mpi_available", "is_nccl_available",
           "is_torchelastic_launched", "isend", "new_group", "recv", "reduce", "reduce_scatter",
           "reduce_scatter_tensor", "scatter", "send"]

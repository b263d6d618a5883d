"""Process-group lifecycle: ``init_process_group``, ``new_group``, ranks, ``barrier``, ``destroy_process_group``."""

from __future__ import annotations

import os
from datetime import timedelta

from engine.distributed import mpi_backend
from engine.distributed.process_group import Backend, GroupMember, ProcessGroup, default_group, resolve, state
from engine.distributed.rendezvous import rendezvous
from engine.distributed.store import DEFAULT_TIMEOUT, PrefixStore


def is_available() -> bool:
    """True: engine.distributed is always built (its backends need mpi4py or CuPy at init)."""
    return True


def is_mpi_available() -> bool:
    return mpi_backend.available()


def is_gloo_available() -> bool:
    """"gloo" runs on the MPI backend, so it is available when MPI is."""
    return mpi_backend.available()


def is_nccl_available() -> bool:
    from engine.distributed import nccl_backend

    return nccl_backend.available()


def is_initialized() -> bool:
    return state.default_pg is not None


def is_torchelastic_launched() -> bool:
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def init_process_group(backend=None, init_method=None, timeout=None, world_size: int = -1, rank: int = -1,
                       store=None, group_name: str = "", pg_options=None, device_id=None) -> None:
    """Join the default process group: every rank calls it with the same backend.

    Args:
        backend: "gloo" or "mpi" (CPU, on MPI) or "nccl" (GPU); None picks "nccl" when ``device_id``
            is a CUDA device, else "gloo". "cpu:gloo,cuda:nccl" style strings take the CUDA entry on GPU.
        init_method: "env://" (default), "file://PATH" or "redis://HOST:PORT/DB"; not with ``store``.
        timeout: a ``datetime.timedelta`` for the rendezvous (default 30 minutes).

    Example:
        >>> dist.init_process_group("gloo")   # under python -m engine.distributed.run
    """
    if state.default_pg is not None:
        raise ValueError("trying to initialize the default process group twice!")
    timeout = timeout or DEFAULT_TIMEOUT
    if not isinstance(timeout, timedelta):
        raise TypeError(f"init_process_group: timeout must be a datetime.timedelta, got {type(timeout).__name__}")
    name = _pick_backend(backend, device_id)
    if store is None:
        store, rank, world_size = rendezvous(init_method, rank, world_size, timeout)
    elif init_method is not None:
        raise ValueError("init_process_group: cannot specify both init_method and store")
    elif rank < 0 or world_size <= 0:
        raise ValueError("init_process_group: rank and world_size are required with a store")
    if not 0 <= rank < world_size:
        raise ValueError(f"init_process_group: rank {rank} is outside world_size {world_size}")
    state.generation += 1
    key = f"default_pg/{state.generation}"
    pg: ProcessGroup
    if name == Backend.NCCL:
        from engine.distributed import nccl_backend

        pg = nccl_backend.NCCLProcessGroup.create(PrefixStore(key, store), rank, world_size, device_id)
    else:
        comm = mpi_backend.connect_world(store, rank, world_size, key)
        pg = mpi_backend.MPIProcessGroup(str(name), comm, list(range(world_size)))
    state.default_pg = pg
    state.store = store
    GroupMember.WORLD = pg


def _pick_backend(backend, device_id) -> Backend:
    if backend is None:
        on_gpu = device_id is not None and "cuda" in str(getattr(device_id, "type", device_id))
        return Backend(Backend.NCCL if on_gpu else Backend.GLOO)
    text = str(backend).lower()
    if ":" in text:  # "cpu:gloo,cuda:nccl"
        entries = dict(part.split(":", 1) for part in text.split(","))
        use_cuda = device_id is not None and "cuda" in entries
        return Backend(entries["cuda"] if use_cuda else entries.get("cpu", "gloo"))
    return Backend(text)


def destroy_process_group(group=None) -> None:
    """Leave ``group`` (the default group: every group, and ``init_process_group`` may run again)."""
    if group is None or group is GroupMember.WORLD:
        for g in [*state.groups, state.default_pg]:
            if g is not None:
                g.destroy()
        state.groups.clear()
        state.default_pg = None
        state.store = None
        GroupMember.WORLD = None
        return
    if group is not GroupMember.NON_GROUP_MEMBER:
        group.destroy()
        if group in state.groups:
            state.groups.remove(group)


def get_rank(group=None) -> int:
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return resolve(group, "get_rank").rank()


def get_world_size(group=None) -> int:
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return resolve(group, "get_world_size").size()


def get_backend(group=None) -> str:
    return resolve(group, "get_backend").name()


def get_global_rank(group, group_rank: int) -> int:
    return resolve(group, "get_global_rank")._ranks[group_rank]


def get_group_rank(group, global_rank: int) -> int:
    pg = resolve(group, "get_group_rank")
    if global_rank not in pg._ranks:
        raise ValueError(f"get_group_rank: global rank {global_rank} is not part of the group")
    return pg._ranks.index(global_rank)


def get_process_group_ranks(group) -> list[int]:
    return list(resolve(group, "get_process_group_ranks")._ranks)


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False,
              group_desc=None, device_id=None):
    """A group over the global ``ranks`` (all ranks if None); every rank of the world must call it."""
    world = default_group("new_group")
    ranks = sorted(int(r) for r in ranks) if ranks is not None else list(range(world.size()))
    bad = [r for r in ranks if not 0 <= r < world.size()]
    if bad:
        raise ValueError(f"new_group: ranks {bad} are outside world_size {world.size()}")
    sub = world.split(ranks, ranks)
    if sub is None:
        return GroupMember.NON_GROUP_MEMBER
    state.groups.append(sub)
    return sub


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Block until every rank of ``group`` reaches it."""
    work = resolve(group, "barrier").barrier()
    if async_op:
        return work
    work.wait()
    return None


def get_default_store():
    if state.store is None:
        raise ValueError("get_default_store: the default process group is not initialized")
    return state.store

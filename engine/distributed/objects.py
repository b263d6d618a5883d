"""Object collectives: ``broadcast_object_list``, ``all_gather_object``, ``gather_object``.

Objects travel as JSON, never pickle (unpickling a peer's bytes runs its code): they must be
JSON-serialisable (dicts with str keys, lists, str, numbers, bool, None; tuples arrive as lists).
"""

from __future__ import annotations

import json

import numpy as np

from engine.distributed.process_group import resolve


def _encode(obj, caller: str) -> np.ndarray:
    try:
        text = json.dumps(obj, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"engine.distributed.{caller}: objects travel as JSON (never pickle), and "
                        f"{type(obj).__name__} is not JSON-serialisable: {e}") from None
    return np.frombuffer(text.encode(), np.uint8).copy()


def _decode(buf):
    host = buf.get() if hasattr(buf, "get") else buf  # NOTE: a CuPy array on the nccl backend
    return json.loads(host.tobytes().decode())


def _xp(pg):
    return getattr(pg, "cp", np)  # the nccl group moves bytes in device memory, as PyTorch


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None, group_src=None) -> None:
    """Replace ``object_list``'s items on every rank by those of ``src``."""
    pg = resolve(group, "broadcast_object_list")
    root = group_src if group_src is not None else pg._ranks.index(src)
    xp = _xp(pg)
    payload = _encode(list(object_list), "broadcast_object_list") if pg.rank() == root else None
    size = xp.asarray(np.array([0 if payload is None else payload.size], np.int64))
    pg.broadcast(size, root).wait()
    buf = xp.asarray(payload) if payload is not None else xp.empty(int(size[0]), np.uint8)
    pg.broadcast(buf, root).wait()
    if pg.rank() != root:
        received = _decode(buf)
        if len(received) != len(object_list):
            raise ValueError("broadcast_object_list: object_list lengths differ between ranks")
        object_list[:] = received


def _gather_payloads(pg, obj, caller: str) -> list:
    xp = _xp(pg)
    payload = _encode(obj, caller)
    sizes = xp.empty(pg.size(), np.int64)
    pg.allgather(sizes, xp.asarray(np.array([payload.size], np.int64))).wait()
    sizes = sizes.tolist()
    longest = max(sizes)
    padded = np.zeros(longest, np.uint8)
    padded[: payload.size] = payload
    out = xp.empty((pg.size(), longest), np.uint8)
    pg.allgather(out, xp.asarray(padded)).wait()
    return [_decode(out[r, : sizes[r]]) for r in range(pg.size())]


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Set ``object_list[r]`` to rank r's ``obj`` on every rank."""
    pg = resolve(group, "all_gather_object")
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list needs {pg.size()} entries, got {len(object_list)}")
    object_list[:] = _gather_payloads(pg, obj, "all_gather_object")


def gather_object(obj, object_gather_list=None, dst: int = 0, group=None, group_dst=None) -> None:
    """Collect every rank's ``obj`` into ``object_gather_list`` on ``dst``."""
    pg = resolve(group, "gather_object")
    root = group_dst if group_dst is not None else pg._ranks.index(dst)
    gathered = _gather_payloads(pg, obj, "gather_object")
    if pg.rank() == root:
        if object_gather_list is None or len(object_gather_list) != pg.size():
            raise ValueError(f"gather_object: the destination needs an object_gather_list of {pg.size()} entries")
        object_gather_list[:] = gathered

"""``init_method`` -> (store, rank, world_size): ``env://``, ``file://PATH``, ``redis://...``.

``env://`` reads RANK and WORLD_SIZE, then the store from KILN_RENDEZVOUS_URL (``redis://`` or
``file://``; the launcher sets one) or, failing that, MASTER_ADDR/MASTER_PORT: ranks on one machine
then meet in a FileStore named after the port in the temp dir. Ranks on several machines need Redis
(KILN_RENDEZVOUS_URL=redis://...): engine opens no sockets of its own.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from datetime import timedelta
from urllib.parse import urlparse

from engine.distributed.store import FileStore, RedisStore, Store


def _env_int(name: str, given: int, caller: str) -> int:
    if given is not None and given >= 0:
        return given
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"{caller}: environment variable {name} expected, but not set")
    return int(value)


def _is_local(host: str) -> bool:
    if host in ("localhost", "127.0.0.1", "::1", "0.0.0.0", ""):  # noqa: S104 - a comparison; nothing binds
        return True
    try:
        return host in (socket.gethostname(), socket.getfqdn()) or socket.gethostbyname(host).startswith("127.")
    except OSError:
        return False


def store_from_url(url: str, timeout: timedelta, world_size: int = -1) -> Store:
    parsed = urlparse(url)
    if parsed.scheme in ("redis", "rediss", "unix"):
        prefix = parsed.fragment or "engine-rdzv"
        return RedisStore(url.split("#")[0], prefix=prefix + "/", timeout=timeout)
    if parsed.scheme == "file":
        return FileStore(parsed.path, world_size, timeout=timeout)
    raise ValueError(f"init_process_group: unsupported rendezvous URL {url!r} (use env://, file://PATH or redis://)")


def rendezvous(init_method: str | None, rank: int, world_size: int, timeout: timedelta):
    """The store, rank and world size for ``init_process_group``."""
    caller = "init_process_group"
    init_method = init_method or "env://"
    if not init_method.startswith("env://"):
        parsed = urlparse(init_method)
        query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
        rank = _env_int("RANK", int(query.get("rank", rank)), caller)
        world_size = _env_int("WORLD_SIZE", int(query.get("world_size", world_size)), caller)
        base = init_method.split("?")[0]
        return store_from_url(base, timeout, world_size), rank, world_size
    rank = _env_int("RANK", rank, caller)
    world_size = _env_int("WORLD_SIZE", world_size, caller)
    url = os.environ.get("KILN_RENDEZVOUS_URL")
    if url:
        return store_from_url(url, timeout, world_size), rank, world_size
    addr = os.environ.get("MASTER_ADDR")
    port = os.environ.get("MASTER_PORT")
    if addr is None or port is None:
        raise ValueError(f"{caller}: env:// needs MASTER_ADDR and MASTER_PORT (or KILN_RENDEZVOUS_URL)")
    if not _is_local(addr):
        raise ValueError(f"{caller}: MASTER_ADDR={addr} is another machine; ranks on several machines meet "
                         "through Redis: set KILN_RENDEZVOUS_URL=redis://HOST:6379/DB")
    path = os.path.join(tempfile.gettempdir(), f"engine-rdzv-{port}.json")
    return _local_store(path, rank, world_size, timeout), rank, world_size


def _local_store(path: str, rank: int, world_size: int, timeout: timedelta) -> FileStore:
    """A FileStore that rank 0 empties at each start; the others wait until a live rank 0 owns it."""
    if rank == 0:
        fresh = f"{path}.{os.getpid()}"
        open(fresh, "w").close()
        os.replace(fresh, path)
        store = FileStore(path, world_size, timeout=timeout)
        store.set("owner", str(os.getpid()))
        return store
    store = FileStore(path, world_size, timeout=timeout)
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        owner = store._get("owner")
        if owner is not None and _alive(int(owner)):
            return store
        if time.monotonic() > deadline:
            raise TimeoutError(f"init_process_group: rank 0 did not open the rendezvous file {path}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

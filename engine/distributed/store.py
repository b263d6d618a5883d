"""Rendezvous key-value stores, as ``torch.distributed.Store``: a file for one machine, Redis for many.

Values are bytes (``set`` also takes ``str``); ``get`` and ``wait`` block until the keys exist or the
store's timeout passes (then ``TimeoutError``, as PyTorch's ``DistStoreError`` is one).

Example:
    >>> store = FileStore("/tmp/rdzv", 2)
    >>> store.set("port", "x"); store.get("port")
    b'x'
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import time
from datetime import timedelta

DEFAULT_TIMEOUT = timedelta(minutes=30)  # PyTorch's default_pg_timeout
_POLL_S = 0.01


def _as_bytes(value) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"Store values are str or bytes, got {type(value).__name__}")


class Store:
    """Base class: ``set``/``get``/``add``/``wait``/``check``/``delete_key``/``num_keys`` with a timeout."""

    def __init__(self, timeout: timedelta = DEFAULT_TIMEOUT):
        self.timeout = timeout

    def set_timeout(self, timeout: timedelta) -> None:
        self.timeout = timeout

    # Subclasses implement these four on their service.
    def _get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def set(self, key: str, value) -> None:
        raise NotImplementedError

    def add(self, key: str, amount: int) -> int:
        raise NotImplementedError

    def delete_key(self, key: str) -> bool:
        raise NotImplementedError

    def num_keys(self) -> int:
        raise NotImplementedError

    def check(self, keys: list[str]) -> bool:
        """True when every key is set (does not wait)."""
        return all(self._get(k) is not None for k in keys)

    def wait(self, keys: list[str], timeout: timedelta | None = None) -> None:
        """Block until every key is set, or raise ``TimeoutError`` naming the missing ones."""
        limit = (timeout or self.timeout).total_seconds()
        deadline = time.monotonic() + limit
        delay = _POLL_S
        while True:
            missing = [k for k in keys if self._get(k) is None]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{type(self).__name__}: timed out after {limit:g}s waiting for keys {missing}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def get(self, key: str) -> bytes:
        """The value of ``key``, waiting for it to be set."""
        self.wait([key])
        value = self._get(key)
        assert value is not None
        return value


class FileStore(Store):
    """A store in one file (JSON, under ``flock``) shared by the processes of one machine.

    Args:
        file_name: the file (created if missing).
        world_size: the number of processes using it (-1: unknown); informational, as PyTorch.
    """

    def __init__(self, file_name: str, world_size: int = -1, timeout: timedelta = DEFAULT_TIMEOUT):
        super().__init__(timeout)
        self.path = file_name
        self.world_size = world_size
        os.makedirs(os.path.dirname(os.path.abspath(file_name)), exist_ok=True)
        with open(file_name, "a"):
            pass

    def _update(self, change, write: bool = True):
        with open(self.path, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            text = f.read()
            data = json.loads(text) if text else {}
            result = change(data)
            if write:
                f.seek(0)
                f.truncate()
                f.write(json.dumps(data))
            return result

    def _get(self, key: str) -> bytes | None:
        value = self._update(lambda d: d.get(key), write=False)
        return None if value is None else base64.b64decode(value)

    def set(self, key: str, value) -> None:
        encoded = base64.b64encode(_as_bytes(value)).decode()
        self._update(lambda d: d.__setitem__(key, encoded))

    def add(self, key: str, amount: int) -> int:
        def change(d):
            current = int(base64.b64decode(d[key])) if key in d else 0
            current += int(amount)
            d[key] = base64.b64encode(str(current).encode()).decode()
            return current
        return self._update(change)

    def delete_key(self, key: str) -> bool:
        return self._update(lambda d: d.pop(key, None) is not None)

    def num_keys(self) -> int:
        return self._update(len, write=False)


class RedisStore(Store):
    """A store on Redis (Kiln's broker) for ranks on several machines; keys live under ``prefix``.

    Example:
        >>> store = RedisStore("redis://127.0.0.1:6379/13", prefix="run-42/")
    """

    def __init__(self, url: str, prefix: str = "engine-rdzv/", timeout: timedelta = DEFAULT_TIMEOUT):
        import redis

        super().__init__(timeout)
        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)

    def _get(self, key: str) -> bytes | None:
        value = self._redis.get(self.prefix + key)
        return None if value is None else _as_bytes(value)

    def set(self, key: str, value) -> None:
        self._redis.set(self.prefix + key, _as_bytes(value))

    def add(self, key: str, amount: int) -> int:
        return int(self._redis.incrby(self.prefix + key, int(amount)))

    def delete_key(self, key: str) -> bool:
        return bool(self._redis.delete(self.prefix + key))

    def num_keys(self) -> int:
        return sum(1 for _ in self._redis.scan_iter(match=self.prefix + "*"))


class PrefixStore(Store):
    """Another store's keys under ``prefix`` (as ``torch.distributed.PrefixStore``)."""

    def __init__(self, prefix: str, store: Store):
        super().__init__(store.timeout)
        self.prefix = prefix
        self.underlying_store = store

    def _get(self, key: str) -> bytes | None:
        return self.underlying_store._get(f"{self.prefix}/{key}")

    def set(self, key: str, value) -> None:
        self.underlying_store.set(f"{self.prefix}/{key}", value)

    def add(self, key: str, amount: int) -> int:
        return self.underlying_store.add(f"{self.prefix}/{key}", amount)

    def delete_key(self, key: str) -> bool:
        return self.underlying_store.delete_key(f"{self.prefix}/{key}")

    def num_keys(self) -> int:
        return self.underlying_store.num_keys()

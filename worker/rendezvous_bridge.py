"""The rendezvous of a multi-node run without any platform service in the sandbox.

The ranks of each node meet in a `FileStore` in their own run folder (KILN_RENDEZVOUS_URL=file://...).
The worker, outside the sandbox, copies that store's keys to the attempt's shared key space and the
keys other nodes wrote back into it, every 50 ms: Redis (`kiln:rdzv:<run>:<attempt>:<id>`, a hash) when the
installation has Redis (`<id>` is the attempt's random `RunNode.rendezvous_id`, so a key left by an
earlier database's run of the same number is never read), else the database (`RendezvousKey`). Keys are written once (the engine's MPI and
NCCL rendezvous only `set` distinct keys and `wait` for them), so first-writer-wins copying is exact.
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)
EVERY = 0.05
REDIS_TTL_SECONDS = 7 * 24 * 3600


class KeySpace(Protocol):
    def push(self, items: dict[str, str]) -> None: ...
    def pull(self) -> dict[str, str]: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...


class RedisKeySpace:
    """`kiln:rdzv:<run>:<attempt>:<id>` on the installation's Redis: one hash, fields set with HSETNX."""

    def __init__(self, url: str, run_id: int, attempt: int, rendezvous_id: str):
        import redis

        self.key = f"kiln:rdzv:{run_id}:{attempt}:{rendezvous_id}"
        self._redis = redis.Redis.from_url(url)

    def push(self, items: dict[str, str]) -> None:
        pipe = self._redis.pipeline()
        for key, value in items.items():
            pipe.hsetnx(self.key, key, value)
        pipe.expire(self.key, REDIS_TTL_SECONDS)
        pipe.execute()

    def pull(self) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in self._redis.hgetall(self.key).items()}

    def clear(self) -> None:
        self._redis.delete(self.key)

    def close(self) -> None:
        self._redis.close()


class DatabaseKeySpace:
    """`RendezvousKey` rows of (run, attempt): inserts that ignore a key already there."""

    def __init__(self, run_id: int, attempt: int):
        self.run_id, self.attempt = run_id, attempt

    def push(self, items: dict[str, str]) -> None:
        from webapp.experiments.models import RendezvousKey

        RendezvousKey.objects.bulk_create(
            [RendezvousKey(run_id=self.run_id, attempt=self.attempt, key=k, value=v) for k, v in items.items()],
            ignore_conflicts=True)

    def pull(self) -> dict[str, str]:
        from webapp.experiments.models import RendezvousKey

        return dict(RendezvousKey.objects.filter(run_id=self.run_id, attempt=self.attempt).values_list("key", "value"))

    def clear(self) -> None:
        from webapp.experiments.models import RendezvousKey

        RendezvousKey.objects.filter(run_id=self.run_id, attempt=self.attempt).delete()

    def close(self) -> None:
        from django.db import connection

        connection.close()  # the bridge thread's own connection


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def key_space(redis_url: str | None, run_id: int, attempt: int, rendezvous_id: str) -> KeySpace:
    if redis_url:
        return RedisKeySpace(redis_url, run_id, attempt, rendezvous_id)
    return DatabaseKeySpace(run_id, attempt)


class RendezvousBridge:
    """Copies keys between the ranks' FileStore at `path` and the attempt's shared `space`, in a thread."""

    def __init__(self, path: Path, space: KeySpace):
        self.path, self.space = path, space
        self._pushed: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"rendezvous {path}", daemon=True)
        self.errors = 0

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> RendezvousBridge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def clear(self) -> None:
        """Drop the attempt's keys (node 0, once its ranks are done); a failure only leaves them to expire."""
        try:
            self.space.clear()
        except Exception as exc:
            log.warning("rendezvous bridge %s: could not clear its keys: %s", self.path, exc)

    def sync(self) -> None:
        """One round: local keys out, remote keys in. The ranks create the file; the bridge never does
        (the job's uid must own it)."""
        if not self.path.exists():
            return
        local = _read(self.path)
        new = {k: v for k, v in local.items() if self._pushed.get(k) != v}
        if new:
            self.space.push(new)
            self._pushed.update(new)
        remote = self.space.pull()
        missing = {k: v for k, v in remote.items() if k not in local}
        if missing:
            _merge(self.path, missing)
            self._pushed.update(missing)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(EVERY):
                try:
                    self.sync()
                except Exception as exc:  # a blip of Redis or the database: the ranks wait, the next round retries
                    self.errors += 1
                    if self.errors in (1, 100):
                        log.warning("rendezvous bridge %s: %s", self.path, exc)
        finally:
            self.space.close()


def _read(path: Path) -> dict[str, str]:
    with open(path) as f:
        fcntl.flock(f, fcntl.LOCK_SH)
        text = f.read()
    return json.loads(text) if text.strip() else {}


def _merge(path: Path, items: dict[str, str]) -> None:
    """Add keys the ranks' store lacks, under its lock (the FileStore's own protocol: JSON of base64)."""
    with open(path, "r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        text = f.read()
        data = json.loads(text) if text.strip() else {}
        for key, value in items.items():
            data.setdefault(key, value)
        f.seek(0)
        f.truncate()
        f.write(json.dumps(data))

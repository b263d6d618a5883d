"""Kiln's kombu transports: a doorbell that cannot be read is logged and set aside, never fatal.

`FilesystemTransport` (the server-less embedded broker) writes each message file under a
temporary name and renames it into the queue folder, so a reader never sees a half-written
file (kombu's own writer does not: celery/kombu#1551). Its reader claims a file by removing
it; a file that is empty, truncated or not a kombu message is moved to the `bad_folder`
transport option for inspection. `RedisTransport` logs and drops such a message (the log
keeps it). Either way the consumer goes on: a doorbell is disposable, the scheduler sends
again for a run stuck in `scheduled`.
"""

from __future__ import annotations

import logging
import os
import uuid
from time import monotonic, time
from typing import Any

from kombu.transport import filesystem, redis
from kombu.utils.json import dumps, loads

log = logging.getLogger("kiln.broker")
_SHOWN_BYTES = 200  # of an unreadable Redis message, in the log
ABANDONED_AFTER = 3600.0  # seconds: a temp message file this old was left by a writer that died mid-write


def envelope_problem(channel: Any, payload: object) -> str | None:
    """Why kombu could not make a message of `payload` (None when it can): kombu's own parsing."""
    if not isinstance(payload, dict):
        return f"not a message object but {type(payload).__name__}"
    try:
        channel.Message(payload, channel=channel)
    except Exception as exc:  # any failure means "not a message"; the caller logs it
        return f"{type(exc).__name__}: {exc}"
    return None


class _SkipsUnreadable:
    """The transport-level guard for every virtual transport: a payload that is not a message is skipped."""

    channels: list[Any]

    def _deliver(self, message: Any, queue: str) -> None:
        channel = next((c for c in self.channels if c), None)
        problem = envelope_problem(channel, message) if channel is not None else None
        if problem:
            log.error("skipped an unreadable message on %s (%s): %.*r", queue, problem, _SHOWN_BYTES, message)
            return
        super()._deliver(message, queue)  # type: ignore[misc]


class FilesystemChannel(filesystem.Channel):
    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu passes kwargs
        """Write the message whole under a temporary name, then rename it into the queue folder."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        temp = os.path.join(self.data_folder_out, f".{name}.tmp")  # never matches a queue's `*.QUEUE.msg`
        try:
            with open(temp, "xb") as f:
                f.write(dumps(message).encode())
            os.replace(temp, final)  # NOTE: no fsync: a doorbell lost to a power cut is sent again
        except OSError as exc:
            _remove_quietly(temp)
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        """The oldest readable message of `queue`; unreadable files on the way are moved aside."""
        suffix = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.startswith(".") and name.endswith(f"{suffix}.tmp"):
                _remove_if_abandoned(os.path.join(self.data_folder_in, name))
                continue
            if name.partition(".")[2] != suffix:
                continue
            path = os.path.join(self.data_folder_in, name)
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:  # another consumer took it
                continue
            except OSError as exc:
                raise filesystem.ChannelError(f"Cannot read file {path!r} from queue.") from exc
            problem, payload = self._parse(raw)
            if problem:
                self._set_aside(path, name, problem)
                continue
            try:
                os.remove(path)  # the claim: of two readers only one removes it
            except FileNotFoundError:
                continue
            return payload
        raise filesystem.Empty()

    def _parse(self, raw: bytes) -> tuple[str | None, Any]:
        if not raw.strip():
            return "empty file", None
        try:
            payload = loads(raw.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError: truncated or not JSON
            return f"{type(exc).__name__}: {exc}", None
        return envelope_problem(self, payload), payload

    def _set_aside(self, path: str, name: str, problem: str) -> None:
        bad = self.transport_options.get("bad_folder")
        try:
            if bad:
                os.makedirs(bad, exist_ok=True)
                os.replace(path, os.path.join(bad, name))
            else:
                os.remove(path)
        except FileNotFoundError:  # another consumer set it aside first
            return
        log.error("skipped an unreadable message file %s (%s); %s", name, problem,
                  f"moved to {bad}" if bad else "removed")


def _remove_if_abandoned(temp: str) -> None:
    """A temp file older than ABANDONED_AFTER seconds is a writer's that died mid-write: remove it."""
    try:
        if time() - os.stat(temp).st_mtime > ABANDONED_AFTER:
            os.remove(temp)
            log.warning("removed %s, a message file its writer never finished", os.path.basename(temp))
    except FileNotFoundError:
        pass


class FilesystemTransport(_SkipsUnreadable, filesystem.Transport):
    Channel = FilesystemChannel


class RedisChannel(redis.Channel):
    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))
        except ValueError as exc:  # JSONDecodeError of an item BRPOP already removed: it is dropped
            _log_dropped(exc)
            return True

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        while True:
            try:
                return super()._get(queue)
            except ValueError as exc:  # the item was popped; try the next one
                _log_dropped(exc)


class RedisTransport(_SkipsUnreadable, redis.Transport):
    Channel = RedisChannel


def _log_dropped(exc: ValueError) -> None:
    doc = getattr(exc, "doc", None)
    log.error("dropped an unreadable message from Redis (%s: %s): %.*r", type(exc).__name__, exc,
              _SHOWN_BYTES, doc if doc is not None else "?")


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass

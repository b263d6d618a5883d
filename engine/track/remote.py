"""Metrics sent to a Kiln server from a background thread: the training loop only appends to a queue.

`MetricBatcher.add` never does I/O: points go to a bounded in-memory queue that a daemon thread
sends as columnar batches (`{"series": [{"key", "steps", "values", "wall_times"}]}`, at most
`batch_points` a request, over one keep-alive connection) to `POST /api/runs/{id}/metrics`.
- Nothing is lost while the process lives: a batch leaves the queue only once the server stored it
  (the endpoint is idempotent per (key, step), so a resend after a lost answer stores nothing twice).
  An unreachable server, a 5xx or a 429 is retried with backoff (capped at `RETRY_MAX_SECONDS`).
- `add` blocks only while the queue is full (`max_points`), at most `block_seconds`; then it raises
  `BacklogFull` rather than drop points silently.
- `close` (atexit too, and `engine.track`'s session end) sends what is queued, waiting at most
  `close_seconds`; points it could not send are reported on stderr with their count.
- A batch the server refuses (4xx: a bad key, no permission) cannot be stored by resending: it is
  dropped and the error raised by the next `add`, `flush` or `close`.
- `progress` (a `track.progress` record) goes to `POST /api/runs/{id}/progress` after the points queued
  before it, by the same thread and rules; only the latest unsent report is kept (the server keeps
  only the latest too).

Standard library only: the job's environment and `webapp.client` use it alike.
"""

from __future__ import annotations

import atexit
import http.client
import json
import math
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from engine.track.channel import Channel

RETRY_MAX_SECONDS = 5.0
_TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


class BacklogFull(RuntimeError):
    """The queue stayed full for `block_seconds`: the server has not taken points for a while."""


class MetricsRefused(RuntimeError):
    """The server refused a batch (4xx); `status` and the server's message say why."""

    def __init__(self, status: int, message: str):
        super().__init__(f"the server refused {message}")
        self.status = status


class MetricBatcher:
    """Queues (key, step, value, wall_time) points for one run and sends them in the background."""

    def __init__(self, url: str, token: str | None, run_id: int, *, batch_points: int = 10_000,
                 flush_seconds: float = 1.0, max_points: int = 500_000, block_seconds: float = 5.0,
                 close_seconds: float = 30.0, timeout: float = 30.0):
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the server URL must start with http:// or https://, got {url!r}")
        if not 1 <= batch_points <= 10_000:
            raise ValueError("batch_points must be 1-10,000 (the server's batch limit)")
        self._parts, self._path = parts, f"{parts.path}/api/runs/{int(run_id)}/metrics"
        self._progress_path = f"{parts.path}/api/runs/{int(run_id)}/progress"
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "kiln-track"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.batch_points, self.flush_seconds, self.max_points = batch_points, flush_seconds, max(max_points, batch_points)
        self.block_seconds, self.close_seconds, self.timeout = block_seconds, close_seconds, timeout
        self._queue: list[tuple[str, int, float, float]] = []
        self._progress: dict[str, Any] | None = None  # the latest progress report not yet stored
        self._error: MetricsRefused | None = None
        self._closing = False
        self._gave_up = False  # close() stopped waiting: the thread ends at its next step
        self._cond = threading.Condition()
        self._connection: http.client.HTTPConnection | None = None
        self.sent = 0  # points the server acknowledged
        self._thread = threading.Thread(target=self._run, name=f"kiln-metrics-{run_id}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def add(self, step: int, wall_time: float, values: Mapping[str, float]) -> None:
        """Queue one step's values; waits at most `block_seconds` for room, else raises BacklogFull."""
        points = [(str(key), int(step), float(value), float(wall_time)) for key, value in values.items()]
        with self._cond:
            self._raise_error()
            if self._closing:
                raise RuntimeError("the metric batcher is closed")
            if len(self._queue) + len(points) > self.max_points:
                deadline = time.monotonic() + self.block_seconds
                while len(self._queue) + len(points) > self.max_points:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise BacklogFull(f"{len(self._queue):,} points wait for the server (the limit is "
                                          f"{self.max_points:,}); it has not taken any for {self.block_seconds} s")
                    self._cond.wait(left)
            self._queue.extend(points)
            if len(self._queue) >= self.batch_points:
                self._cond.notify_all()

    def log(self, values: Mapping[str, float], step: int, wall_time: float | None = None) -> None:
        """`add` in `engine.track.log`'s argument order; `wall_time` defaults to now."""
        self.add(step, time.time() if wall_time is None else wall_time, values)

    def progress(self, record: Mapping[str, Any]) -> None:
        """Send a progress report (step/total, epoch/epochs, eta_seconds, time) once the points before it are sent.

        Never waits: a report still unsent when the next comes is replaced by it.
        """
        with self._cond:
            self._raise_error()
            if self._closing:
                raise RuntimeError("the metric batcher is closed")
            self._progress = dict(record)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued point (and progress report) is stored, at most `timeout` s; returns whether they were."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._unsent() and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left if left is not None else 0.5)
            self._raise_error()
            return not self._unsent()

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued (at most `timeout`, default `close_seconds`) and stop; idempotent."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        atexit.unregister(self.close)
        self._thread.join(self.close_seconds if timeout is None else timeout)
        with self._cond:
            left, progress_left = len(self._queue), self._progress is not None
            self._queue.clear()
            self._progress = None
            self._gave_up = True
            self._cond.notify_all()
        if left:
            print(f"kiln: {left:,} metric points could not be sent to {self._parts.geturl()} before exit",
                  file=sys.stderr)
        if progress_left:
            print(f"kiln: the last progress report could not be sent to {self._parts.geturl()} before exit",
                  file=sys.stderr)
        self._raise_error()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    # The sending thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._send_until_closed()
        finally:
            self._drop_connection()

    def _unsent(self) -> bool:
        return bool(self._queue) or self._progress is not None

    def _send_until_closed(self) -> None:
        backoff = 0.1
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_seconds
                while not self._closing and len(self._queue) < self.batch_points:
                    left = deadline - time.monotonic()
                    if left <= 0 and self._unsent():
                        break
                    self._cond.wait(max(left, 0.05) if self._unsent() else None)
                    if self._gave_up:
                        return
                if not self._unsent():
                    if self._closing:
                        return
                    continue
                # points first: a progress report follows the points logged before it
                batch = self._queue[: self.batch_points]
                progress = None if batch else self._progress
            if batch:
                status, message, retry_after = self._post(self._path, _batch_body(batch))
            else:
                status, message, retry_after = self._post(self._progress_path, json.dumps(progress).encode())
            with self._cond:
                if self._gave_up:
                    return
                if status == 200 or (status not in _TRANSIENT and status != 0):
                    if batch:
                        del self._queue[: len(batch)]
                    elif self._progress is progress:  # not replaced by a newer report meanwhile
                        self._progress = None
                    if status == 200:
                        self.sent += len(batch)
                    elif batch:
                        self._error = MetricsRefused(status, f"{len(batch):,} metric points ({status}): {message}")
                    else:
                        self._error = MetricsRefused(status, f"a progress report ({status}): {message}")
                    backoff = 0.1
                    self._cond.notify_all()
                    continue
            time.sleep(min(RETRY_MAX_SECONDS, max(backoff, retry_after)))  # transient: the same batch again
            backoff = min(RETRY_MAX_SECONDS, backoff * 2)

    def _post(self, path: str, body: bytes) -> tuple[int, str, float]:
        """(status, message, Retry-After seconds) of posting `body`; status 0 when the server was not reached."""
        try:
            connection = self._connection or self._connect()
            connection.request("POST", path, body=body, headers=self._headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            return 0, str(exc), 0.0
        if response.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        return response.status, _message(data), _seconds(response.getheader("Retry-After"))

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        self._connection = kind(self._parts.hostname or "", self._parts.port, timeout=self.timeout)
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error


def _batch_body(batch: list[tuple[str, int, float, float]]) -> bytes:
    """The metrics endpoint's columnar body: one {"key", "steps", "values", "wall_times"} per key."""
    series: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for key, step, value, wall in batch:
        columns = series.get(key)
        if columns is None:
            columns = series[key] = ([], [], [])
        columns[0].append(step)
        columns[1].append(value)
        columns[2].append(wall)
    return json.dumps({"series": [{"key": key, "steps": s, "values": v, "wall_times": w}
                                  for key, (s, v, w) in series.items()]}, separators=(",", ":")).encode()


def _message(data: bytes) -> str:
    try:
        body = json.loads(data or b"{}")
    except ValueError:
        return data[:200].decode(errors="replace")
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def _seconds(header: str | None) -> float:
    try:
        value = float(header or 0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


class ServerChannel:
    """A local run folder whose metrics and progress also go to a run on a Kiln server (KILN_URL, KILN_TOKEN, KILN_RUN_ID)."""

    def __init__(self, local: Channel, batcher: MetricBatcher):
        self._local, self.batcher = local, batcher

    def metrics(self, step: int, time: float, values: dict[str, float]) -> None:
        self._local.metrics(step, time, values)
        self.batcher.add(step, time, values)

    def params(self, time: float, values: dict[str, Any]) -> None:
        self._local.params(time, values)

    def progress(self, record: dict[str, Any]) -> None:
        self._local.progress(record)
        self.batcher.progress(record)

    def artifact(self, name: str, path: str, time: float) -> None:
        self._local.artifact(name, path, time)

    def checkpoint(self, name: str, path: str, step: int, time: float) -> None:
        self._local.checkpoint(name, path, step, time)

    def model(self, name: str, path: str, time: float, metadata: dict[str, Any]) -> None:
        self._local.model(name, path, time, metadata)

    def close(self) -> None:
        try:
            self.batcher.close()
        finally:
            self._local.close()

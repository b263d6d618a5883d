"""The job's stdout and stderr as numbered log lines, bounded per run with a visible notice."""

from __future__ import annotations

import threading
from typing import IO

from webapp.experiments.results import MAX_LOG_LINE_CHARS

READ_LIMIT = 64 * 1024  # a "line" without a newline is cut into pieces this long
NOTE_PREFIX = "[kiln] "


class LogPump:
    """Reader threads fill a buffer that the executor `take()`s and stores in batches.

    Lines past `max_bytes` / `max_lines` are counted but dropped, after one truncation notice;
    past `kill_bytes` the job is `flooded` and the executor stops it.
    """

    def __init__(self, *, first_seq: int, max_bytes: int, max_lines: int, kill_bytes: int):
        self._lock = threading.Lock()
        self._buffer: list[tuple[int, str, str]] = []
        self._next_seq = first_seq
        self._max_bytes, self._max_lines, self._kill_bytes = max_bytes, max_lines, kill_bytes
        self._stored_bytes = 0
        self._stored_lines = 0
        self.total_bytes = 0
        self.truncated = False
        self.last_error = ""  # the job's last non-empty stderr line, for the failure reason
        self._threads: list[threading.Thread] = []

    @property
    def flooded(self) -> bool:
        return self.total_bytes > self._kill_bytes

    def attach(self, stream: str, pipe: IO[bytes]) -> None:
        thread = threading.Thread(target=self._read, args=(stream, pipe), name=f"log-{stream}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def note(self, text: str) -> None:
        """A line from the platform itself (always stored, never counted against the job)."""
        with self._lock:
            self._append("stderr", NOTE_PREFIX + text)

    def take(self) -> list[tuple[int, str, str]]:
        with self._lock:
            lines, self._buffer = self._buffer, []
        return lines

    def put_back(self, lines: list[tuple[int, str, str]]) -> None:
        """Lines `take()` returned that could not be stored: offered again by the next `take()`."""
        with self._lock:
            self._buffer[:0] = lines

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _read(self, stream: str, pipe: IO[bytes]) -> None:
        with pipe:
            while chunk := pipe.readline(READ_LIMIT):
                self._offer(stream, chunk)

    def _offer(self, stream: str, chunk: bytes) -> None:
        with self._lock:
            self.total_bytes += len(chunk)
            if self.truncated:
                return
            if self._stored_bytes + len(chunk) > self._max_bytes or self._stored_lines >= self._max_lines:
                self.truncated = True
                self._append("stderr", NOTE_PREFIX + (
                    f"log truncated: this run printed more than {self._max_bytes // 1_000_000} MB or "
                    f"{self._max_lines:,} lines; later output is not stored"))
                return
            self._stored_bytes += len(chunk)
            self._stored_lines += 1
            text = chunk.decode("utf-8", errors="replace").rstrip("\r\n")
            if stream == "stderr" and text.strip():
                self.last_error = text.strip()[:300]
            self._append(stream, text[:MAX_LOG_LINE_CHARS])

    def _append(self, stream: str, text: str) -> None:
        self._buffer.append((self._next_seq, stream, text))
        self._next_seq += 1

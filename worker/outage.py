"""Riding out a database outage: a job's results wait in memory and on disk until it answers again.

Every write the worker makes is idempotent (metrics on (run, key, step), log lines on (run, seq),
artifacts by name, state changes by compare-and-swap), so a step that failed half-way is simply
done again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar, cast

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)
T = TypeVar("T")
UNREACHABLE = (OperationalError, InterfaceError)  # connection lost or refused, server restarting
FIRST_DELAY, MAX_DELAY = 0.5, 5.0


class ResultsUnsaved(RuntimeError):
    """The database stayed unreachable past the worker's patience; the job's folder is kept."""


class DatabaseGate:
    """One thread's view of the database: after a failure, wait (doubling up to 5 s) before trying again.

    `note` is told, once per outage, when the database went away and when it came back.
    """

    def __init__(self, note: Callable[[str], None] = lambda text: None):
        self.note = note
        self.down_since: float | None = None
        self._delay = FIRST_DELAY
        self._next_try = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self._next_try

    def attempt(self, step: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, result), or (False, None) while the database is unreachable (now or on the last try)."""
        if not self.ready():
            return False, None
        try:
            result = step()
        except UNREACHABLE as exc:
            self._failed(exc)
            return False, None
        if self.down_since is not None:
            self.note(f"database reachable again after {time.monotonic() - self.down_since:.0f} s")
            self.down_since = None
        self._delay = FIRST_DELAY
        return True, result

    def insist(self, step: Callable[[], T], *, patience: float, what: str) -> T:
        """`step()`, tried again until the database answers; ResultsUnsaved after `patience` seconds."""
        deadline = time.monotonic() + patience
        while True:
            done, result = self.attempt(step)
            if done:
                return cast(T, result)
            if self._next_try > deadline:
                raise ResultsUnsaved(f"{what}: the database did not answer for {patience:.0f} s")
            time.sleep(max(0.0, self._next_try - time.monotonic()))

    def _failed(self, exc: Exception) -> None:
        _drop_connection()
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            reason = first_line(exc)
            log.warning("database unreachable: %s", reason)
            self.note(f"database unreachable ({reason}); results are kept and stored when it answers again")
        self._next_try = now + self._delay
        self._delay = min(self._delay * 2, MAX_DELAY)


def first_line(exc: BaseException) -> str:
    """A database error in one short line (psycopg's messages run over several)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _drop_connection() -> None:
    """Close this thread's broken connection, so the next query opens a fresh one."""
    if connection.in_atomic_block:  # an enclosing transaction (a test's) owns it
        return
    try:
        connection.close()
    except Exception:  # closing a dead connection may fail too; it is dropped either way
        log.debug("closing the broken database connection failed", exc_info=True)

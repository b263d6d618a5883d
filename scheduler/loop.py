"""`kiln scheduler`: each tick, check what is queued and place it (placement comes with the run model)."""

from __future__ import annotations

import logging
import signal
import threading

from django.db import close_old_connections

from webapp.health.checks import check_broker, check_database

log = logging.getLogger("kiln.scheduler")


def run_scheduler(tick_seconds: float, stop: threading.Event | None = None) -> None:
    stop = stop or _stop_on_signals()
    log.info("scheduler started: tick every %.1f s", tick_seconds)
    reported_idle = False
    while not stop.is_set():
        close_old_connections()
        database, broker = check_database(), check_broker()
        if not (database["ok"] and broker["ok"]):
            log.warning("scheduler waiting: database=%s broker=%s", database, broker)
            reported_idle = False
        elif not reported_idle:
            log.info("scheduler idle: database and broker connected, nothing to place")
            reported_idle = True
        stop.wait(tick_seconds)
    log.info("scheduler stopped")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop

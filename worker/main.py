"""`kiln worker`: register, heartbeat, and consume this worker's own Celery queue."""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.db import close_old_connections

from webapp.cluster.services import worker_heartbeat, worker_register, worker_sign_off
from worker.celery_app import make_celery_app, worker_queue_name
from worker.gpus import discover_gpus

log = logging.getLogger("kiln.worker")


def run_worker() -> None:
    config = settings.CONFIG
    queue = worker_queue_name(config.worker_name)
    gpus = discover_gpus()
    cpu_slots = os.cpu_count() or 1
    record = worker_register(
        name=config.worker_name, hostname=os.uname().nodename, queue=queue, cpu_slots=cpu_slots, gpus=gpus
    )
    log.info("worker %s registered: %d CPU slots, %d GPUs, queue %s", record.name, cpu_slots, len(gpus), queue)
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat_loop, args=(record.id, config.heartbeat_seconds, stop), name="heartbeat", daemon=True
    )
    beat.start()
    log.info("worker %s idle: waiting for runs on %s", record.name, queue)
    try:
        app = make_celery_app()
        app.worker_main(
            [
                "worker",
                "--queues", queue,
                "--hostname", f"{config.worker_name}@%h",
                "--pool", "threads",
                "--concurrency", "1",
                "--loglevel", "INFO",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        stop.set()
        beat.join(timeout=5)
        worker_sign_off(worker_id=record.id)
        log.info("worker %s signed off", record.name)


def _heartbeat_loop(worker_id: int, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            close_old_connections()
            if not worker_heartbeat(worker_id=worker_id):
                log.warning("heartbeat not recorded: worker row %s was removed or signed off", worker_id)
        except Exception:
            log.exception("heartbeat failed; retrying in %.0f s", every)

"""Each check answers {"ok": bool, ...details}; none raises, so one failure never hides another."""

from __future__ import annotations

import os

import redis
from django.conf import settings
from django.db import connection

from webapp.cluster.selectors import workers_online

_TIMEOUT_SECONDS = 2.0


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "vendor": connection.vendor, "error": _one_line(exc)}
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict:
    config = settings.CONFIG
    if config.redis_url:
        try:
            client = redis.Redis.from_url(
                config.redis_url, socket_connect_timeout=_TIMEOUT_SECONDS, socket_timeout=_TIMEOUT_SECONDS
            )
            client.ping()
            client.close()
        except redis.RedisError as exc:
            return {"ok": False, "transport": "redis", "error": _one_line(exc)}
        return {"ok": True, "transport": "redis"}
    queue_dir = config.broker_transport_options["data_folder_in"]
    if not os.path.isdir(queue_dir) or not os.access(queue_dir, os.W_OK):
        return {"ok": False, "transport": "filesystem", "error": f"queue folder {queue_dir} is not writable"}
    return {"ok": True, "transport": "filesystem"}


def check_workers() -> dict:
    try:
        names = list(workers_online().values_list("name", flat=True))
    except Exception as exc:
        return {"ok": False, "online": 0, "error": _one_line(exc)}
    return {"ok": bool(names), "online": len(names), "names": names}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()

"""Each check answers {"ok": bool, ...details}; none raises, so one failure never hides another."""

from __future__ import annotations

import os

import redis
from django.conf import settings
from django.db import connection

from webapp.cluster.selectors import workers_online
from webapp.config import EMBEDDED
from webapp.supervisor import read_state, state_path

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
    """Workers online, and what each one's start-up canary found its sandbox isolates."""
    try:
        rows = list(workers_online().values_list("name", "isolated", "isolation"))
    except Exception as exc:
        return {"ok": False, "online": 0, "error": _one_line(exc)}
    isolation = {name: {"isolated": isolated, "summary": (found or {}).get("summary", "not checked yet")}
                 for name, isolated, found in rows}
    return {"ok": bool(rows), "online": len(rows), "names": [row[0] for row in rows], "isolation": isolation,
            "unisolated_code_allowed": settings.CONFIG.allow_unisolated_code}


def check_supervisor() -> dict | None:
    """In `kiln run`, each child's restarts and last error (None outside the embedded supervisor)."""
    config = settings.CONFIG
    if config.mode != EMBEDDED:
        return None
    children = read_state(state_path(config.data_dir))
    if children is None:
        return None
    return {name: {"restarts": c.get("restarts", 0), "last_error": c.get("last_error", "")}
            for name, c in children.items() if isinstance(c, dict)}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()

"""Running the few fixed queries that every API request makes, at the lowest cost the database allows."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from django.db import connection


def fetch_fixed(sql: str, params: list[Any]) -> list[tuple]:
    """Rows of a query whose text never changes (only its parameters do).

    On PostgreSQL it is bound on the server and prepared once per connection: Django's cursors
    bind on the client, so PostgreSQL would plan it on every request; binary results also halve
    the cost of reading rows (datetimes come back aware, in the connection's UTC). Elsewhere it
    runs through Django's cursor. Either way it shows in `connection.queries`.
    Parameters are written `%s`; cast them in the SQL where PostgreSQL must know their type.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    connection.ensure_connection()
    started = time.monotonic()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True, binary=True)
        rows = cursor.fetchall()
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return rows

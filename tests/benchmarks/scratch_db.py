"""A throwaway database for one benchmark, so a benchmark never touches data it did not make.

With DATABASE_URL on PostgreSQL (as `make bench` sets it where PostgreSQL runs) a new database
is created on that server; otherwise a SQLite file in `data_dir`. Import before Django is set up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlparse, urlunparse


def use_scratch_database(data_dir: str) -> Callable[[], None]:
    """Point DATABASE_URL at a new, empty database; returns the function that drops it."""
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith("postgres"):
        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir}/bench.sqlite3"
        return lambda: None
    name = f"kiln_bench_{os.getpid()}"
    _maintenance(server, f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunparse(urlparse(server)._replace(path=f"/{name}"))

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        _maintenance(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return drop


def _maintenance(url: str, sql: str) -> None:
    """One statement on the server's maintenance database (the named one need not exist)."""
    import psycopg

    with psycopg.connect(urlunparse(urlparse(url)._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(sql)

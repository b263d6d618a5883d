"""Migration 0012: the metric table becomes hash-partitioned by run on PostgreSQL, its rows moved, and back."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest

from tests.services import REPO, require

pytestmark = pytest.mark.slow
ROWS = [(1, "loss", 0, 1.5, 10.0), (1, "loss", 1, None, 11.0), (2, "acc", 5, float("inf"), 12.0), (40, "sys/cpu", 0, 3.0, 13.0)]


@pytest.fixture
def scratch():
    server = os.environ.get("DATABASE_URL", "")
    require(server.startswith("postgres"), "needs PostgreSQL (DATABASE_URL)")
    name = f"kiln_partitions_{os.getpid()}"
    maintenance = urlunparse(urlparse(server)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunparse(urlparse(server)._replace(path=f"/{name}"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str, target: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "experiments", target, "-v0"], cwd=REPO, env=env, check=True)


def _points(conn) -> list[tuple]:
    return conn.execute("SELECT run_id, key, step, value, wall_time FROM experiments_metric ORDER BY run_id, key, step").fetchall()


def test_the_migration_moves_every_point_into_partitions_and_back(scratch):
    _migrate(scratch, "0010")
    with psycopg.connect(scratch, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO experiments_metric (run_id, key, step, value, wall_time) VALUES (%s, %s, %s, %s, %s)", ROWS)
        last_id = conn.execute("SELECT MAX(id) FROM experiments_metric").fetchone()[0]
    _migrate(scratch, "0012")
    with psycopg.connect(scratch, autocommit=True) as conn:
        assert _points(conn) == ROWS
        kind, parts = conn.execute("SELECT p.partstrat, p.partnatts FROM pg_partitioned_table p "
                                   "WHERE p.partrelid = 'experiments_metric'::regclass").fetchone()
        assert kind == "h" and parts == 1
        assert conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'experiments_metric'::regclass").fetchone()[0] == 32
        # the point's key is the primary key: a resent point conflicts, a new one takes the next id
        conn.execute("INSERT INTO experiments_metric (run_id, key, step, value, wall_time) VALUES (1, 'loss', 0, 9, 1) "
                     "ON CONFLICT (run_id, key, step) DO NOTHING")
        new_id = conn.execute("INSERT INTO experiments_metric (run_id, key, step, value, wall_time) "
                              "VALUES (3, 'loss', 0, 1, 1) RETURNING id").fetchone()[0]
        assert new_id > last_id and len(_points(conn)) == len(ROWS) + 1
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO experiments_metric (run_id, key, step, value, wall_time) VALUES (1, 'loss', 1, 9, 1)")
        conn.execute("DELETE FROM experiments_metric WHERE run_id = 3")
    _migrate(scratch, "0010")
    with psycopg.connect(scratch, autocommit=True) as conn:
        assert _points(conn) == ROWS
        assert conn.execute("SELECT count(*) FROM pg_partitioned_table").fetchone()[0] == 0

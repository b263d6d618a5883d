"""The rendezvous bridge: two nodes' FileStores meet through the attempt's key space (Redis or the database)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta

import pytest
from services import reachable, require

from engine.distributed.store import FileStore
from worker.rendezvous_bridge import DatabaseKeySpace, RedisKeySpace, RendezvousBridge


@pytest.fixture(params=["database", "redis"])
def space_for(request, submit_code):
    run = submit_code("pass\n")
    if request.param == "redis":
        url = os.environ.get("REDIS_URL", "")
        require(bool(url) and reachable(url, 6379), "Redis is not reachable (REDIS_URL)")
        rendezvous_id = secrets.token_hex(8)
        spaces = []

        def make():
            spaces.append(RedisKeySpace(url, run.id, 1, rendezvous_id))
            return spaces[-1]

        yield make
        spaces[0].clear()
    else:
        yield lambda: DatabaseKeySpace(run.id, 1)


def test_keys_set_on_one_node_reach_the_other_and_back(tmp_path, space_for):
    stores = [FileStore(str(tmp_path / f"node{k}" / "store.json"), timeout=timedelta(seconds=5)) for k in range(2)]
    bridges = [RendezvousBridge(tmp_path / f"node{k}" / "store.json", space_for()) for k in range(2)]
    stores[0].set("mpi/port", "tag#0$connentry#ABC")
    for bridge in bridges * 2:
        bridge.sync()
    assert stores[1].get("mpi/port") == b"tag#0$connentry#ABC"
    stores[1].set("mpi/joined/1", b"\x00\x01")
    for bridge in bridges[::-1] * 2:
        bridge.sync()
    assert stores[0].get("mpi/joined/1") == b"\x00\x01"
    assert stores[0].num_keys() == stores[1].num_keys() == 2


def test_the_bridge_never_creates_the_ranks_store(tmp_path, space_for):
    bridge = RendezvousBridge(tmp_path / "store.json", space_for())
    bridge.sync()
    assert not (tmp_path / "store.json").exists()


def test_bridge_threads_copy_while_the_ranks_wait(tmp_path):
    url = os.environ.get("REDIS_URL", "")
    require(bool(url) and reachable(url, 6379), "Redis is not reachable (REDIS_URL)")
    rendezvous_id = secrets.token_hex(8)
    a, b = (FileStore(str(tmp_path / f"{k}.json"), timeout=timedelta(seconds=10)) for k in "ab")
    threads = [RendezvousBridge(tmp_path / f"{k}.json", RedisKeySpace(url, 7, 1, rendezvous_id)).start() for k in "ab"]
    try:
        a.set("nccl_unique_id", "[1, 2, 3]")
        b.wait(["nccl_unique_id"])
        assert b.get("nccl_unique_id") == b"[1, 2, 3]"
    finally:
        for thread in threads:
            thread.stop()
        threads[0].clear()

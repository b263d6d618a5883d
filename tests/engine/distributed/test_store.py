"""The rendezvous stores: FileStore (one machine) and RedisStore (db 13 on the local Redis)."""

import os
import threading
import time
from datetime import timedelta

import pytest
from services import reachable, require

from engine.distributed import FileStore, PrefixStore, RedisStore

REDIS = os.environ.get("KILN_TEST_RENDEZVOUS_REDIS", "redis://127.0.0.1:6379/13")


@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path):
    if request.param == "file":
        yield FileStore(str(tmp_path / "store"), 2, timeout=timedelta(seconds=2))
        return
    require(reachable(REDIS, 6379), f"Redis is not answering at {REDIS}")
    s = RedisStore(REDIS, prefix=f"test-store-{os.getpid()}-{time.monotonic_ns()}/", timeout=timedelta(seconds=2))
    yield s
    for key in s._redis.scan_iter(match=s.prefix + "*"):
        s._redis.delete(key)


def test_set_get_add_check_delete(store):
    store.set("a", "1")
    store.set("b", b"\x00\xff")
    assert store.get("a") == b"1" and store.get("b") == b"\x00\xff"
    assert store.add("n", 2) == 2 and store.add("n", 3) == 5 and store.get("n") == b"5"
    assert store.check(["a", "n"]) and not store.check(["a", "missing"])
    assert store.num_keys() == 3
    assert store.delete_key("a") and not store.delete_key("a")
    assert not store.check(["a"])


def test_get_waits_for_another_writer(store):
    threading.Timer(0.2, store.set, ("late", "here")).start()
    assert store.get("late") == b"here"


def test_wait_times_out_naming_the_missing_keys(store):
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="missing-key"):
        store.wait(["missing-key"], timedelta(seconds=0.3))
    assert 0.25 < time.monotonic() - start < 2


def test_prefix_store_keeps_keys_apart(store):
    a, b = PrefixStore("a", store), PrefixStore("b", store)
    a.set("k", "1")
    b.set("k", "2")
    assert a.get("k") == b"1" and b.get("k") == b"2"
    assert a.add("c", 1) == 1


def test_values_must_be_str_or_bytes(store):
    with pytest.raises(TypeError, match="str or bytes"):
        store.set("k", 3)

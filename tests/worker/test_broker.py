"""Kiln's kombu transports: message files appear whole, and an unreadable message never stops a consumer."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

import pytest
import redis
from kombu import Connection

from worker.broker import ABANDONED_AFTER, FilesystemTransport, RedisTransport, envelope_problem


def _take(queue, timeout):
    message = queue.get(timeout=timeout)
    message.ack()
    return message.payload


def _fs_connection(tmp_path):
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    options = {"data_folder_in": str(queue_dir), "data_folder_out": str(queue_dir),
               "control_folder": str(tmp_path / "control"), "bad_folder": str(tmp_path / "bad"),
               "polling_interval": 0.01}
    return Connection("filesystem://", transport=FilesystemTransport, transport_options=options), queue_dir
    # NOTE: kombu keeps the filesystem transport's declarations per process, so each test uses its own queue name.


def test_a_message_file_appears_whole_under_its_queue_name_and_no_temporary_file_is_left(tmp_path):
    connection, queue_dir = _fs_connection(tmp_path)
    with connection, connection.SimpleQueue("kiln.first") as queue:
        queue.put({"run": 1})
        [name] = [p.name for p in queue_dir.iterdir()]
        assert name.endswith(".kiln.first.msg") and not name.startswith(".")
        assert json.loads((queue_dir / name).read_text())["properties"]["delivery_tag"]
        assert _take(queue, 2) == {"run": 1}
    assert list(queue_dir.iterdir()) == []


def test_empty_truncated_and_malformed_files_are_moved_aside_and_the_next_message_still_arrives(tmp_path, caplog):
    connection, queue_dir = _fs_connection(tmp_path)
    bad = {"00000_empty.kiln.test.msg": b"", "00001_truncated.kiln.test.msg": b'{"body": "eyJydW4iOiAxfQ==", "pro',
           "00002_list.kiln.test.msg": b"[1, 2]", "00003_no_properties.kiln.test.msg": b'{"body": "e30="}',
           "00004_binary.kiln.test.msg": b"\xff\xfe\x00"}
    for name, data in bad.items():  # named to sort before any real message (milliseconds since boot)
        (queue_dir / name).write_bytes(data)
    (queue_dir / "9_other.kiln.other.msg").write_bytes(b"")  # another queue's file is not this consumer's
    with caplog.at_level(logging.ERROR, "kiln.broker"), connection, connection.SimpleQueue("kiln.test") as queue:
        queue.put({"run": 2})
        assert _take(queue, 2) == {"run": 2}
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == sorted(bad)
    assert [p.name for p in queue_dir.iterdir()] == ["9_other.kiln.other.msg"]
    assert (tmp_path / "bad" / "00001_truncated.kiln.test.msg").read_bytes() == bad["00001_truncated.kiln.test.msg"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "00000_empty.kiln.test.msg (empty file)" in logged and "JSONDecodeError" in logged
    assert "00003_no_properties.kiln.test.msg (KeyError" in logged


def test_a_temporary_file_a_dead_writer_left_is_removed_once_old_and_a_fresh_one_is_kept(tmp_path):
    connection, queue_dir = _fs_connection(tmp_path)
    abandoned, in_progress = queue_dir / ".1_a.kiln.tmps.msg.tmp", queue_dir / ".2_b.kiln.tmps.msg.tmp"
    abandoned.write_bytes(b'{"bo')
    in_progress.write_bytes(b'{"bo')
    old = time.time() - ABANDONED_AFTER - 60
    os.utime(abandoned, (old, old))
    with connection, connection.SimpleQueue("kiln.tmps") as queue:
        queue.put({"run": 3})
        assert _take(queue, 2) == {"run": 3}
    assert not abandoned.exists() and in_progress.exists()


def test_redis_drops_an_unreadable_message_with_a_log_line_and_delivers_the_next(redis_url, caplog):
    name = f"kiln.test.{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    try:
        with caplog.at_level(logging.ERROR, "kiln.broker"), \
                Connection(redis_url, transport=RedisTransport) as connection, \
                connection.SimpleQueue(name) as queue:
            client.lpush(name, b'{"body": "trunc')
            client.lpush(name, b'["not", "a", "message"]')
            queue.put({"run": 3})
            assert _take(queue, 5) == {"run": 3}
            client.lpush(name, b"")
            queue.put({"run": 4})
            assert _take(queue, 5) == {"run": 4}
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "dropped an unreadable message from Redis (JSONDecodeError" in logged and "trunc" in logged
        assert "skipped an unreadable message on" in logged and "not a message object but list" in logged
    finally:
        client.delete(name)
        client.close()


@pytest.mark.parametrize("payload", [None, 3, "x", [], {}, {"properties": "x"}, {"properties": {}},
                                     {"properties": {"delivery_tag": "t", "body_encoding": "rot13"}, "body": "e30="}])
def test_envelope_problem_names_what_kombu_cannot_read(tmp_path, payload):
    connection, _ = _fs_connection(tmp_path)
    with connection:
        channel = connection.default_channel
        assert envelope_problem(channel, {"body": "e30=", "properties": {"delivery_tag": "t", "body_encoding": "base64"}}) is None
        assert envelope_problem(channel, payload)


def _publish_many(options: dict, queue_name: str, count: int) -> None:
    with Connection("filesystem://", transport=FilesystemTransport, transport_options=options) as connection, \
            connection.SimpleQueue(queue_name) as queue:
        for i in range(count):
            queue.put({"n": i})


def test_concurrent_writers_and_a_reader_lose_no_message_and_see_no_partial_file(tmp_path, caplog):
    # The race of celery/kombu#1551: a reader listing the folder while writers are mid-write.
    import multiprocessing

    connection, _ = _fs_connection(tmp_path)
    options = dict(connection.transport_options)
    writers = [multiprocessing.get_context("spawn").Process(target=_publish_many, args=(options, "kiln.stress", 250))
               for _ in range(4)]
    received = 0
    with caplog.at_level(logging.ERROR, "kiln.broker"), connection, connection.SimpleQueue("kiln.stress") as queue:
        for writer in writers:
            writer.start()
        while received < 1000:
            _take(queue, 30)
            received += 1
    for writer in writers:
        writer.join(timeout=30)
        assert writer.exitcode == 0
    assert received == 1000 and caplog.records == [] and not (tmp_path / "bad").exists()

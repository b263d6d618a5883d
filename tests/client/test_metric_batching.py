"""Background metric batching (engine.track.remote, Client.metric_logger): nothing lost at exit or through an outage."""

from __future__ import annotations

import math
import socket
import socketserver
import threading
import time
from urllib.parse import urlsplit

import pytest

from engine.track.remote import BacklogFull, MetricBatcher, MetricsRefused
from webapp.client.client import Client
from webapp.experiments.models import Metric, MetricSummary

from .outside_kiln import new_run, run_outside_kiln

EXITING_SCRIPT = """
import engine.track as track
for step in range(7000):
    track.log({"loss": 1.0 / (step + 1), "acc": step / 7000, "lr": 0.1}, step=step)
track.log({"loss": float("nan")}, step=7000)
# no finish(): the exit itself must send the 21,001 queued points
"""



def _counts(run_id: int) -> dict[str, int]:
    return dict(MetricSummary.objects.filter(run_id=run_id).values_list("key", "count"))


def test_a_script_that_exits_without_finishing_loses_no_point(server, tmp_path):
    client = Client(server.url, server.token)
    run = new_run(server, client)
    run_outside_kiln(server, run["id"], EXITING_SCRIPT, tmp_path)
    assert _counts(run["id"]) == {"loss": 7001, "acc": 7000, "lr": 7000}
    assert math.isnan(client.metrics(run, "loss", step_min=7000)["values"][0])
    assert (tmp_path / "kiln-runs").is_dir()  # the local folder is written as before


class _Proxy:
    """A TCP forwarder to the live server that can go down (connections refused and cut) and come back."""

    def __init__(self, target: str):
        parts = urlsplit(target)
        self.target = (parts.hostname, parts.port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: socketserver.ThreadingTCPServer | None = None
        self._open: list[socket.socket] = []
        self.up()

    def up(self) -> None:
        proxy = self

        class Forward(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with socket.create_connection(proxy.target) as upstream:
                    proxy._open += [self.request, upstream]
                    pump = threading.Thread(target=_pipe, args=(upstream, self.request), daemon=True)
                    pump.start()
                    _pipe(self.request, upstream)
                    pump.join(5)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Forward)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        for sock in self._open:  # cut the connections under way; their handlers close them
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._open.clear()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass


def test_points_logged_while_the_server_is_unreachable_arrive_once_it_is_back(server):
    client = Client(server.url, server.token)
    run = new_run(server, client)
    proxy = _Proxy(server.url)
    batcher = MetricBatcher(proxy.url, server.token, run["id"], batch_points=500, flush_seconds=0.05)
    for step in range(1000):
        batcher.log({"loss": float(step)}, step=step)
    assert batcher.flush(timeout=30)
    proxy.down()
    started = time.monotonic()
    for step in range(1000, 3000):  # the outage: logging goes on, never waiting on the network
        batcher.log({"loss": float(step), "acc": 0.5}, step=step)
    assert time.monotonic() - started < 5
    time.sleep(0.5)  # the thread has tried and failed meanwhile
    assert batcher.pending > 0
    proxy.up()
    batcher.close(timeout=60)
    assert _counts(run["id"]) == {"loss": 3000, "acc": 2000}
    assert list(Metric.objects.filter(run_id=run["id"], key="loss").order_by("step").values_list("value", flat=True)) == [
        float(s) for s in range(3000)]
    proxy.down()


def test_a_full_queue_blocks_log_only_for_block_seconds_then_raises(server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens here
    batcher = MetricBatcher(f"http://127.0.0.1:{closed}", "kiln_x", 1, batch_points=10, max_points=20, block_seconds=0.3,
                            close_seconds=0.2)
    for step in range(20):
        batcher.log({"loss": 1.0}, step=step)
    started = time.monotonic()
    with pytest.raises(BacklogFull):
        batcher.log({"loss": 1.0}, step=20)
    assert 0.25 <= time.monotonic() - started < 5
    batcher.close()  # gives up after close_seconds and says how many points were not sent


def test_a_batch_the_server_refuses_is_raised_not_retried(server):
    client = Client(server.url, server.token)
    run = new_run(server, client)
    batcher = MetricBatcher(server.url, "kiln_not_a_token", run["id"], flush_seconds=0.05)
    batcher.log({"loss": 1.0}, step=0)
    with pytest.raises(MetricsRefused) as refused:
        batcher.flush(timeout=30)
    assert refused.value.status == 401 and batcher.pending == 0
    batcher.close()


def test_the_client_logger_and_log_series_store_what_log_metrics_does(server):
    client = Client(server.url, server.token)
    rows, columns, logged = new_run(server, client), new_run(server, client), new_run(server, client)
    client.log_metrics(rows, [{"key": "loss", "step": s, "value": s / 10, "wall_time": 5.0 + s} for s in range(50)])
    client.log_series(columns, [{"key": "loss", "steps": list(range(50)), "values": [s / 10 for s in range(50)],
                                 "wall_times": [5.0 + s for s in range(50)]}])
    logger = client.metric_logger(logged, flush_seconds=0.05)
    for s in range(50):
        logger.log({"loss": s / 10}, step=s, wall_time=5.0 + s)
    logger.close()

    def points(run: dict) -> list:
        return list(Metric.objects.filter(run_id=run["id"]).order_by("step").values_list("key", "step", "value", "wall_time"))

    assert points(rows) == points(columns) == points(logged) and len(points(rows)) == 50


def test_progress_reported_during_an_outage_arrives_once_the_server_is_back_latest_only(server):
    client = Client(server.url, server.token)
    run = new_run(server, client)
    proxy = _Proxy(server.url)
    batcher = MetricBatcher(proxy.url, server.token, run["id"], flush_seconds=0.05)
    proxy.down()
    for step in range(1, 301):
        batcher.log({"loss": 1.0 / step}, step=step)
        batcher.progress({"step": step, "total": 300, "eta_seconds": 300.0 - step, "time": 1000.0 + step})
    time.sleep(0.5)  # the thread has tried and failed meanwhile
    assert not batcher.flush(timeout=0.1)
    proxy.up()
    batcher.close(timeout=60)
    assert _counts(run["id"]) == {"loss": 300}
    assert client.get(run)["progress"] == {"step": 300, "total": 300, "eta_seconds": 0.0, "at": 1300.0}
    proxy.down()

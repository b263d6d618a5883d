"""The network of a multi-node run on one host: its nodes reach each other and nothing else."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from services import require

from worker.gang_network import NETNS_DIR, GangNetwork, gang_network_possible, sweep_stale

LISTEN = "import socket; s = socket.socket(); s.bind(('0.0.0.0', 29400)); s.listen(); c, _ = s.accept(); c.send(b'hi')"
CONNECT = """
import socket, sys
try:
    print(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).recv(2).decode())
except OSError as exc:
    print(type(exc).__name__, exc)
"""


@pytest.fixture
def nodes():
    require(gang_network_possible(), "making network namespaces needs root and iproute2")
    installation = f"test-{uuid.uuid4().hex}"
    made = [GangNetwork.for_node(installation, 1, 1, k) for k in range(2)]
    for node in made:
        node.create()
    yield made
    for node in made:
        node.remove()


def in_netns(node: GangNetwork, *argv: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", node.netns, sys.executable, *argv], stdout=stdout, text=True)


def host_address() -> str:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                         check=True).stdout.split()
    return next(word.split("/")[0] for word in out if "/" in word)


def test_nodes_reach_each_other_but_not_the_host(nodes):
    listener = in_netns(nodes[1], "-c", LISTEN, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        reply = in_netns(nodes[0], "-c", CONNECT, nodes[1].address, "29400").communicate(timeout=20)[0]
        assert reply.strip() == "hi"
    finally:
        listener.kill()
        listener.wait()
    for address, port in ((host_address(), "5432"), ("127.0.0.1", "6379"), ("10.213.0.254", "22")):
        reply = in_netns(nodes[0], "-c", CONNECT, address, port).communicate(timeout=20)[0]
        assert "Error" in reply or "timed out" in reply, (address, reply)


def test_removing_both_nodes_leaves_no_namespace_or_bridge(nodes):
    for node in nodes:
        node.remove()
    assert not (NETNS_DIR / nodes[0].netns).exists() and not (NETNS_DIR / nodes[1].netns).exists()
    assert not Path(f"/sys/class/net/{nodes[0].bridge}").exists()


def test_a_namespace_left_by_a_dead_worker_is_swept(nodes):
    sweep_stale()  # NOTE: other runs' stale namespaces on this host may go; this young one must stay
    assert (NETNS_DIR / nodes[0].netns).exists()  # young: a node may be about to start in it
    assert sweep_stale(now=time.time() + 3600) >= 1
    assert not (NETNS_DIR / nodes[0].netns).exists()
    assert not Path(f"/sys/class/net/{nodes[0].bridge}").exists()

"""The network of a multi-node run whose nodes share one host: a namespace per node, joined only to each other.

Each node's job starts (`ip netns exec`) in its own network namespace holding loopback and one end of a
veth pair; the other ends hang on a bridge made for this run's attempt alone. The bridge has no address
and IPv6 is off on it and its ports, so the ranks reach each other's 10.213.0.0/16 addresses and nothing
else: not the host, not PostgreSQL or Redis, not another run. Checked on these machines (root, iproute2):
MPICH's UCX over TCP between two such namespaces, each under bubblewrap with --unshare-pid.

Nodes on different hosts have no such path; they share the host network only when the operator sets
KILN_DISTRIBUTED_HOST_NETWORK (`worker.executor` decides).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
SUBNET = "10.213"
NETNS_DIR = Path("/run/netns")
STALE_AFTER_SECONDS = 60.0  # a node's job starts within seconds of its namespace; an empty older one is garbage


class NetworkUnavailable(RuntimeError):
    """The namespace or bridge could not be made here (not root, no iproute2, ...)."""


def gang_network_possible() -> bool:
    """Whether this process may make network namespaces and bridges (root with iproute2)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


@dataclass(frozen=True)
class GangNetwork:
    """One node's namespace and its link to the run's bridge; `device` is the job's interface."""

    netns: str
    bridge: str
    host_end: str
    device: str
    address: str

    @classmethod
    def for_node(cls, installation: str, run_id: int, attempt: int, node_rank: int) -> GangNetwork:
        return cls.named(hashlib.sha256(f"{installation}:{run_id}:{attempt}".encode()).hexdigest()[:9], node_rank)

    @classmethod
    def named(cls, tag: str, node_rank: int) -> GangNetwork:
        return cls(netns=f"kiln-{tag}-n{node_rank}", bridge=f"kbr{tag}", host_end=f"kv{tag}h{node_rank}",
                   device=f"kv{tag}j{node_rank}", address=f"{SUBNET}.{node_rank // 250}.{node_rank % 250 + 1}")

    def create(self) -> None:
        """Make the namespace, the veth pair and (if no other node made it yet) the bridge."""
        try:
            _ip("netns", "add", self.netns)  # NOTE: first, so a bridge without a namespace of its run is stale
            _ip("link", "add", self.bridge, "type", "bridge", ok_if="File exists")
            _no_ipv6(self.bridge)
            _ip("link", "set", self.bridge, "up")
            _ip("link", "add", self.host_end, "type", "veth", "peer", "name", self.device, "netns", self.netns)
            _no_ipv6(self.host_end)
            _ip("link", "set", self.host_end, "master", self.bridge, "up")
            _ip("-n", self.netns, "addr", "add", f"{self.address}/16", "dev", self.device)
            _ip("-n", self.netns, "link", "set", self.device, "up")
            _ip("-n", self.netns, "link", "set", "lo", "up")
        except NetworkUnavailable:
            self.remove()
            raise

    def remove(self) -> None:
        """Drop the namespace (its veth pair goes with it) and the bridge once no node is on it."""
        _ip("link", "del", self.host_end, ok_if="Cannot find device")
        _ip("netns", "del", self.netns, ok_if="No such file")
        ports = Path("/sys/class/net") / self.bridge / "brif"
        deadline = time.monotonic() + 2.0
        while (ports / self.host_end).exists() and time.monotonic() < deadline:  # the kernel frees it a moment later
            time.sleep(0.05)
        if ports.is_dir() and not any(ports.iterdir()):
            _ip("link", "del", self.bridge, ok_if="Cannot find device")


def sweep_stale(now: float | None = None) -> int:
    """Remove the namespaces (and then empty bridges) of nodes whose worker died without cleaning up.

    A namespace counts as stale when no process is in it and it is older than STALE_AFTER_SECONDS; a
    bridge when no namespace of its run is left (`create` makes the namespace before the bridge).
    Returns how many namespaces were removed."""
    if not gang_network_possible() or not NETNS_DIR.is_dir():
        return 0
    now = time.time() if now is None else now
    removed: list[str] = []
    for entry in NETNS_DIR.iterdir():
        parts = entry.name.split("-")
        if (len(parts) != 3 or parts[0] != "kiln" or parts[2][:1] != "n" or not parts[2][1:].isdigit()
                or now - entry.stat().st_mtime < STALE_AFTER_SECONDS):
            continue
        pids = subprocess.run([shutil.which("ip") or "ip", "netns", "pids", entry.name],  # noqa: S603
                              capture_output=True, text=True, timeout=30, check=False)
        if pids.returncode == 0 and not pids.stdout.strip():
            GangNetwork.named(parts[1], int(parts[2][1:])).remove()
            removed.append(parts[1])
            log.warning("removed the stale network namespace %s of a multi-node run", entry.name)
    live = {entry.name.split("-")[1] for entry in NETNS_DIR.iterdir() if entry.name.count("-") == 2}
    for bridge in Path("/sys/class/net").glob("kbr*"):
        ports = bridge / "brif"
        if bridge.name[3:] not in live and ports.is_dir() and not any(ports.iterdir()):
            _ip("link", "del", bridge.name, ok_if="Cannot find device")  # its run's namespaces are all gone
    return len(removed)


def _ip(*args: str, ok_if: str = "") -> None:
    done = subprocess.run([shutil.which("ip") or "ip", *args], capture_output=True, text=True,  # noqa: S603
                          timeout=30, check=False)
    if done.returncode != 0 and not (ok_if and ok_if in done.stderr):
        raise NetworkUnavailable(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def _no_ipv6(device: str) -> None:
    """No link-local IPv6 address on the host's side: the jobs must not reach the host through it."""
    path = Path("/proc/sys/net/ipv6/conf") / device / "disable_ipv6"
    if path.exists():
        path.write_text("1\n")

"""``python -m engine.distributed.run`` (also ``enginerun``): torchrun's command line for engine scripts.

Starts ``--nproc-per-node`` plain processes on this node with RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and GROUP_RANK, TORCHELASTIC_RUN_ID) set; they meet in a
rendezvous store: a fresh FileStore for one node, Redis (``--rdzv-endpoint redis://...`` or
KILN_RENDEZVOUS_URL) for several. Each rank's lines are printed prefixed ``[rank N]``; when a rank
fails the others are stopped and the exit status and message name it.

Example:
    $ python -m engine.distributed.run --standalone --nproc-per-node 2 train.py --epochs 3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.distributed.run",
                                description="Start the ranks of a distributed engine script (torchrun's flags).")
    p.add_argument("--nnodes", default="1", help="number of nodes, or MIN:MAX (must be equal)")
    p.add_argument("--nproc-per-node", "--nproc_per_node", dest="nproc_per_node", default="1",
                   help="processes per node: a number, 'cpu' (one per core), 'gpu' or 'auto'")
    p.add_argument("--node-rank", "--node_rank", dest="node_rank", type=int, default=0)
    p.add_argument("--master-addr", "--master_addr", dest="master_addr", default="127.0.0.1")
    p.add_argument("--master-port", "--master_port", dest="master_port", type=int, default=29500)
    p.add_argument("--rdzv-endpoint", "--rdzv_endpoint", dest="rdzv_endpoint", default="",
                   help="HOST:PORT of rank 0, or redis://HOST:PORT/DB for a Redis rendezvous")
    p.add_argument("--rdzv-backend", "--rdzv_backend", dest="rdzv_backend", default="static")
    p.add_argument("--rdzv-id", "--rdzv_id", dest="rdzv_id", default="none")
    p.add_argument("--standalone", action="store_true", help="one node, a free local port")
    p.add_argument("--max-restarts", "--max_restarts", dest="max_restarts", type=int, default=0)
    p.add_argument("--monitor-interval", "--monitor_interval", dest="monitor_interval", type=float, default=0.1)
    p.add_argument("--run-path", "--run_path", dest="run_path", action="store_true")
    p.add_argument("-m", "--module", action="store_true", help="run the script as a module (python -m)")
    p.add_argument("--no-python", "--no_python", dest="no_python", action="store_true")
    p.add_argument("training_script")
    p.add_argument("training_script_args", nargs=argparse.REMAINDER)
    return p


def _count(value: str, what: str) -> int:
    if value in ("cpu", "auto"):
        return os.cpu_count() or 1
    if value == "gpu":
        from engine import cuda

        return max(cuda.device_count(), 1)
    try:
        n = int(value)
    except ValueError:
        raise SystemExit(f"engine.distributed.run: --{what} must be a number, got {value!r}") from None
    if n < 1:
        raise SystemExit(f"engine.distributed.run: --{what} must be at least 1, got {n}")
    return n


def _nnodes(value: str) -> int:
    low, _, high = value.partition(":")
    if high and high != low:
        raise SystemExit(f"engine.distributed.run: elastic --nnodes {value} is not supported; give one number")
    return _count(low, "nnodes")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rendezvous(args, nnodes: int, tmp: str) -> tuple[str, int, str]:
    """MASTER_ADDR, MASTER_PORT and the rendezvous store URL the ranks get."""
    addr, port = args.master_addr, args.master_port
    endpoint = args.rdzv_endpoint
    if args.standalone:
        addr, port, endpoint = "127.0.0.1", _free_port(), ""
    url = os.environ.get("KILN_RENDEZVOUS_URL", "")
    if endpoint.startswith(("redis://", "rediss://")):
        url = endpoint
        endpoint = ""
    if endpoint:
        host, _, p = endpoint.rpartition(":")
        addr, port = (host or endpoint), int(p) if p.isdigit() else port
    if url and url.startswith(("redis://", "rediss://")) and "#" not in url:
        url = f"{url}#engine-rdzv/{args.rdzv_id}/{addr}:{port}"
    if not url:
        if nnodes > 1:
            raise SystemExit("engine.distributed.run: several nodes meet through Redis: pass "
                             "--rdzv-endpoint redis://HOST:6379/DB or set KILN_RENDEZVOUS_URL")
        url = "file://" + os.path.join(tmp, "store.json")
    return addr, port, url


def _command(args) -> list[str]:
    if args.no_python:
        return [args.training_script, *args.training_script_args]
    if args.module:
        return [sys.executable, "-u", "-m", args.training_script, *args.training_script_args]
    return [sys.executable, "-u", args.training_script, *args.training_script_args]


class _Rank:
    def __init__(self, rank: int, local_rank: int, proc: subprocess.Popen):
        self.rank, self.local_rank, self.proc = rank, local_rank, proc
        self.tail: deque[str] = deque(maxlen=20)
        self.threads = [threading.Thread(target=self._pump, args=(proc.stdout, sys.stdout), daemon=True),
                        threading.Thread(target=self._pump, args=(proc.stderr, sys.stderr, True), daemon=True)]
        for t in self.threads:
            t.start()

    def _pump(self, stream, out, keep: bool = False) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            if keep:
                self.tail.append(line)
            out.write(f"[rank {self.rank}] {line}\n")
            out.flush()

    def reason(self) -> str:
        code = self.proc.returncode
        if code is not None and code < 0:
            how = f"was killed by signal {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        lines = [line.strip() for line in self.tail if line.strip()]
        errors = [line for line in lines if _ERROR_LINE.match(line)]
        last = (errors or lines or [""])[-1]
        return f"rank {self.rank} (local_rank {self.local_rank}, pid {self.proc.pid}) {how}" + (
            f": {last}" if last else "")


def _stop(ranks: list[_Rank], grace: float = 5.0) -> None:
    for r in ranks:
        if r.proc.poll() is None:
            _signal(r.proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for r in ranks:
        try:
            r.proc.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            _signal(r.proc, signal.SIGKILL)
            r.proc.wait()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def launch(argv: list[str] | None = None) -> int:
    """Run the ranks of this node; the exit status is 0, or the first failed rank's."""
    args = _parser().parse_args(argv)
    nnodes = _nnodes(args.nnodes)
    nproc = _count(args.nproc_per_node, "nproc-per-node")
    if args.max_restarts < 0:
        raise SystemExit(f"engine.distributed.run: --max-restarts must be 0 or more, got {args.max_restarts}")
    if not 0 <= args.node_rank < nnodes:
        raise SystemExit(f"engine.distributed.run: --node-rank {args.node_rank} is outside --nnodes {nnodes}")
    tmp = tempfile.mkdtemp(prefix="engine-run-")
    try:
        addr, port, url = _rendezvous(args, nnodes, tmp)
    except SystemExit:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    own_store = url == "file://" + os.path.join(tmp, "store.json")
    if args.max_restarts and not own_store:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit("engine.distributed.run: --max-restarts needs a one-node launch with its own store "
                         "(--standalone, or --nnodes 1 without a rendezvous endpoint): restarting several "
                         "nodes together is not supported")
    world = nnodes * nproc
    base = dict(os.environ, MASTER_ADDR=addr, MASTER_PORT=str(port), WORLD_SIZE=str(world),
                LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK=str(args.node_rank), GROUP_WORLD_SIZE=str(nnodes),
                ROLE_WORLD_SIZE=str(world), TORCHELASTIC_RUN_ID=args.rdzv_id, KILN_RENDEZVOUS_URL=url,
                TORCHELASTIC_MAX_RESTARTS=str(args.max_restarts), PYTHONUNBUFFERED="1")
    if nproc > 1:
        base.setdefault("OMP_NUM_THREADS", "1")  # NOTE: as torchrun: N ranks must not each take every core
    ranks: list[_Rank] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def forward(signum, frame):
        _stop(ranks)
        raise SystemExit(128 + signum)
    for s in previous:
        signal.signal(s, forward)
    try:
        for restart in range(args.max_restarts + 1):
            if restart:  # as torchrun: every rank of the node starts again, in a fresh store
                sys.stderr.write(f"engine.distributed.run: restarting the ranks "
                                 f"({restart} of {args.max_restarts} restarts)\n")
                base.update(KILN_RENDEZVOUS_URL="file://" + os.path.join(tmp, f"store-{restart}.json"),
                            MASTER_PORT=str(_free_port()) if args.standalone else base["MASTER_PORT"])
            base["TORCHELASTIC_RESTART_COUNT"] = str(restart)
            ranks.clear()
            for local in range(nproc):
                rank = args.node_rank * nproc + local
                env = dict(base, RANK=str(rank), LOCAL_RANK=str(local), ROLE_RANK=str(rank))
                proc = subprocess.Popen(  # noqa: S603 - the user's own command line, as torchrun runs it
                    _command(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
                ranks.append(_Rank(rank, local, proc))
            code = _monitor(ranks, args.monitor_interval)
            if code == 0:
                return 0
        return code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        shutil.rmtree(tmp, ignore_errors=True)


def _monitor(ranks: list[_Rank], interval: float) -> int:
    while True:
        failed = [r for r in ranks if r.proc.poll() not in (None, 0)]
        if failed:
            first = failed[0]
            _stop(ranks)
            for t in first.threads:
                t.join(1.0)
            sys.stderr.write(f"engine.distributed.run: {first.reason()}; stopped the other ranks\n")
            code = first.proc.returncode
            return code if code > 0 else 128 - code
        if all(r.proc.poll() == 0 for r in ranks):
            for r in ranks:
                for t in r.threads:
                    t.join(5.0)
            return 0
        time.sleep(interval)


def main() -> None:
    sys.exit(launch())


if __name__ == "__main__":
    main()

"""engine.distributed on CPU: all_reduce bandwidth against MPI's own, and DDP's overhead per step.

Run: `python tests/benchmarks/bench_distributed.py [--nproc 2] [--repeats 5]`. Starts its ranks with
`python -m engine.distributed.run --standalone` and prints one JSON object:
- allreduce: per size (1 MB .. 256 MB of float32), the median seconds and the osu-style bus bandwidth
  (2(n-1)/n * bytes / time, GB/s) of `engine.distributed.all_reduce` on an engine tensor and of mpi4py's
  own `Allreduce` on a NumPy array over the same communicator, in the same run, and their ratio;
- ddp: median milliseconds per training step (an MLP 784-1024-1024-10, batch 64 per rank, SGD) of
  the plain model and of the same model under DistributedDataParallel, timed in alternating rounds on
  every rank at once (so both see the same load and the same OMP_NUM_THREADS=1), and the ratio
  ddp/single: what gradient bucketing and all_reduce add to a step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZES_MB = (1, 4, 16, 64, 256)


def _allreduce(repeats: int) -> list[dict]:
    import numpy as np
    from mpi4py import MPI

    import engine
    import engine.distributed as dist

    comm = dist.GroupMember.WORLD.comm
    world = dist.get_world_size()
    out = []
    for mb in SIZES_MB:
        n = mb * 2**20 // 4
        tensor = engine.ones(n)
        array = np.ones(n, dtype=np.float32)
        engine_s, mpi_s = [], []
        for _ in range(repeats):  # alternate, so both see the same machine load
            dist.barrier()
            t = time.perf_counter()
            dist.all_reduce(tensor)
            engine_s.append(time.perf_counter() - t)
            comm.Barrier()
            t = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
            mpi_s.append(time.perf_counter() - t)
        factor = 2 * (world - 1) / world * n * 4 / 1e9
        e, m = statistics.median(engine_s), statistics.median(mpi_s)
        out.append({"mb": mb, "engine_s": e, "mpi_s": m, "engine_busbw_gbs": factor / e, "mpi_busbw_gbs": factor / m,
                    "ratio": e / m})
    return out


def _mlp():
    import engine
    from engine import nn

    engine.manual_seed(0)
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


class _Trainer:
    """One training step of `model` (SGD, cross-entropy, a fixed batch of 64), timed."""

    def __init__(self, model):
        import numpy as np

        import engine

        self.model = model
        self.opt = engine.optim.SGD(model.parameters(), lr=0.01)
        g = np.random.default_rng(0)
        self.x = engine.tensor(g.normal(size=(64, 784)).astype(np.float32))
        self.y = engine.tensor(g.integers(0, 10, size=64))

    def step_s(self) -> float:
        from engine import nn

        t = time.perf_counter()
        self.opt.zero_grad()
        nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.opt.step()
        return time.perf_counter() - t


def _ddp_vs_plain(repeats: int) -> tuple[float, float]:
    """Median ms per step of the same MLP without and with DDP, in alternating rounds on every rank at once."""
    import engine.distributed as dist
    from engine.nn.parallel import DistributedDataParallel as DDP

    plain, ddp = _Trainer(_mlp()), _Trainer(DDP(_mlp()))
    plain.step_s(), ddp.step_s()  # warm up
    plain_s, ddp_s = [], []
    for _ in range(repeats):
        dist.barrier()
        plain_s += [plain.step_s() for _ in range(3)]
        dist.barrier()
        ddp_s += [ddp.step_s() for _ in range(3)]
    return statistics.median(plain_s) * 1000, statistics.median(ddp_s) * 1000


def rank_main(repeats: int, out_path: str) -> None:
    import engine.distributed as dist

    dist.init_process_group("gloo")
    results: dict = {"allreduce": _allreduce(repeats)}
    plain_ms, ddp_ms = _ddp_vs_plain(repeats)
    if dist.get_rank() == 0:
        results.update(plain_ms=plain_ms, ddp_ms=ddp_ms)
        Path(out_path).write_text(json.dumps(results))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rank-out", default="", help=argparse.SUPPRESS)  # set for the ranks themselves
    args = parser.parse_args()
    if args.rank_out:
        rank_main(args.repeats, args.rank_out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ranks.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "engine.distributed.run", "--standalone",
                        f"--nproc-per-node={args.nproc}", __file__, f"--repeats={args.repeats}", f"--rank-out={out}"],
                       check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        ranks = json.loads(out.read_text())
    print(json.dumps({
        "benchmark": "distributed", "world_size": args.nproc, "cpus": os.cpu_count(),
        "allreduce": ranks["allreduce"],
        "ddp": {"single_process_ms": ranks["plain_ms"], "ddp_ms": ranks["ddp_ms"],
                "ratio": ranks["ddp_ms"] / ranks["plain_ms"]},
    }, indent=2))


if __name__ == "__main__":
    main()

"""engine.multiprocessing.spawn + env:// on MASTER_ADDR/MASTER_PORT alone (argv: PORT [fail])."""

import os
import sys

import engine
import engine.distributed as dist
from engine.multiprocessing import spawn


def work(rank, world, fail):
    dist.init_process_group("gloo", rank=rank, world_size=world)
    t = engine.ones(2) * rank
    dist.all_reduce(t)
    print(f"spawned {rank} sum={t.tolist()}", flush=True)
    if fail and rank == 1:
        raise KeyError("rank one failed")
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1])
    os.environ.pop("KILN_RENDEZVOUS_URL", None)
    spawn(work, args=(2, sys.argv[2:] == ["fail"]), nprocs=2)
    print("spawn ok")

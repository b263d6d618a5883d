"""One all_reduce and the rank layout (run by the launcher, any rendezvous)."""

import engine
import engine.distributed as dist

dist.init_process_group("gloo")
t = engine.ones(4) * (dist.get_rank() + 1)
dist.all_reduce(t)
n = dist.get_world_size()
assert t.tolist() == [n * (n + 1) / 2] * 4, t
print(f"allreduce ok {dist.get_rank()}/{n}", flush=True)
dist.destroy_process_group()

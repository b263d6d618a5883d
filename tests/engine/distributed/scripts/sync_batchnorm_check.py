"""SyncBatchNorm over the ranks equals BatchNorm on the global batch: output, input and weight grads, stats."""

import numpy as np

import engine
import engine.distributed as dist
from engine import nn

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
rng = np.random.default_rng(0)
per_rank = 3
x_all = rng.standard_normal((per_rank * world, 4, 5, 2))
g_all = rng.standard_normal(x_all.shape)
rows = slice(rank * per_rank, (rank + 1) * per_rank)

reference = nn.BatchNorm2d(4).double()
with engine.no_grad():
    reference.weight.copy_(engine.tensor(rng.standard_normal(4)))
    reference.bias.copy_(engine.tensor(rng.standard_normal(4)))
synced = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(4).double()))[0]
synced.load_state_dict(reference.state_dict())

xr = engine.tensor(x_all, requires_grad=True)
out_ref = reference(xr)
out_ref.backward(engine.tensor(g_all))

xs = engine.tensor(x_all[rows], requires_grad=True)
out = synced(xs)
out.backward(engine.tensor(g_all[rows]))
weight_grad = synced.weight.grad.clone()
dist.all_reduce(weight_grad)  # each rank holds its own samples' share, as DDP would sum them

np.testing.assert_allclose(out.detach().numpy(), out_ref.detach().numpy()[rows], atol=1e-12)
np.testing.assert_allclose(xs.grad.numpy(), xr.grad.numpy()[rows], atol=1e-12)
np.testing.assert_allclose(weight_grad.numpy(), reference.weight.grad.numpy(), atol=1e-12)
for name in ("running_mean", "running_var", "num_batches_tracked"):
    np.testing.assert_allclose(getattr(synced, name).numpy(), getattr(reference, name).numpy(), atol=1e-12)
print(f"[rank {rank}] sync batchnorm ok {rank}/{world}", flush=True)
dist.destroy_process_group()

"""A small data-parallel training run, written as a PyTorch user would (imports aside).

Params: steps (epochs), pause (seconds slept each step, so a test can act mid-run). Rank 0's
`track` calls are the run's; every rank resumes from the same checkpoint.
"""

import time

import numpy as np

import engine as torch
import engine.distributed as dist
from engine import nn, track
from engine.nn.parallel import DistributedDataParallel as DDP
from engine.utils.data import DataLoader, DistributedSampler, TensorDataset

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
steps, pause = int(track.config.get("steps", 6)), float(track.config.get("pause", 0.0))

g = np.random.default_rng(0)
x = g.normal(size=(64, 4)).astype(np.float32)
y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype=np.float32)
data = TensorDataset(torch.tensor(x), torch.tensor(y))
sampler = DistributedSampler(data, shuffle=True, seed=0)
loader = DataLoader(data, batch_size=8, sampler=sampler)

torch.manual_seed(0)
model = nn.Linear(4, 1)
first = 0
checkpoint = track.resume()
if checkpoint is not None:
    model.load_state_dict({k: torch.tensor(v) for k, v in checkpoint.state.items()})
    first = checkpoint.step + 1
    print(f"rank {rank} resumes at step {first}", flush=True)
ddp = DDP(model)
opt = torch.optim.SGD(ddp.parameters(), lr=0.05)

for step in range(first, steps):
    sampler.set_epoch(step)
    total = torch.zeros(1)
    for xb, yb in loader:
        opt.zero_grad()
        loss = nn.functional.mse_loss(ddp(xb), yb)
        loss.backward()
        opt.step()
        total += loss.detach()
    dist.all_reduce(total)
    track.log({"loss": total.item() / (len(loader) * world), "world_size": world}, step=step)
    track.save_checkpoint({k: v.detach().numpy() for k, v in model.state_dict().items()}, step=step)
    print(f"rank {rank} of {world} finished step {step}", flush=True)
    time.sleep(pause)

dist.destroy_process_group()

"""DDP for 5 steps equals one process training on the global batch (run by the launcher); no_sync too."""

import sys

import numpy as np

import engine
import engine.distributed as dist
from engine import nn
from engine.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
PER_RANK = 4


def model():
    engine.manual_seed(1234)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def batch(step):
    g = np.random.default_rng(step)
    return engine.tensor(g.normal(size=(PER_RANK * world, 5)).astype(np.float32)), engine.tensor(
        g.normal(size=(PER_RANK * world, 3)).astype(np.float32))


def optimizer(name, params):
    if name == "sgd":
        return engine.optim.SGD(params, lr=0.1, momentum=0.9)
    return engine.optim.Adam(params, lr=0.01)


def train(name):
    engine.manual_seed(rank)  # a different init per rank: DDP must broadcast rank 0's
    local = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    local.load_state_dict(model().state_dict()) if rank == 0 else None
    ddp = DDP(local, bucket_cap_mb=0.0005)  # several buckets
    assert len(ddp._buckets) > 1
    opt = optimizer(name, ddp.parameters())
    single = model()
    single_opt = optimizer(name, single.parameters())
    for step in range(5):
        x, y = batch(step)
        mine = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        opt.zero_grad()
        nn.functional.mse_loss(ddp(x[mine]), y[mine]).backward()
        opt.step()
        single_opt.zero_grad()
        # NOTE: the mean over the global batch = the mean of the per-rank means (equal shards).
        nn.functional.mse_loss(single(x), y).backward()
        single_opt.step()
    for (name_d, p), (_, q) in zip(ddp.module.named_parameters(), single.named_parameters(), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-5, err_msg=f"{name} {name_d}")
    assert next(iter(ddp.state_dict())) == "module.0.weight"


def buffers():
    bn = nn.BatchNorm1d(4)
    bn.running_mean.fill_(float(rank))
    ddp = DDP(nn.Sequential(nn.Linear(4, 4), bn))
    assert ddp.module[1].running_mean.tolist() == [0.0] * 4  # rank 0's, broadcast at construction
    assert "module.1.running_mean" in ddp.state_dict()


def no_sync():
    ddp = DDP(model())
    big = model()
    x, y = batch(7)
    halves = [slice(rank * PER_RANK, rank * PER_RANK + 2), slice(rank * PER_RANK + 2, (rank + 1) * PER_RANK)]
    with ddp.no_sync():
        (nn.functional.mse_loss(ddp(x[halves[0]]), y[halves[0]]) / 2).backward()
    local = ddp.module[0].weight.grad.numpy().copy()
    (nn.functional.mse_loss(ddp(x[halves[1]]), y[halves[1]]) / 2).backward()
    nn.functional.mse_loss(big(x), y).backward()
    for p, q in zip(ddp.module.parameters(), big.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-5)
    gathered = [engine.zeros(*local.shape) for _ in range(world)]
    dist.all_gather(gathered, engine.tensor(local))
    assert not all(np.allclose(g.numpy(), gathered[0].numpy()) for g in gathered[1:]), "no_sync communicated"


def unused():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 1), nn.Linear(3, 1)

        def forward(self, x):
            return self.a(x) if rank == 0 else self.a(x) + self.b(x)

    ddp = DDP(TwoHeads(), find_unused_parameters=True)
    ddp(engine.ones(2, 3)).sum().backward()
    assert ddp.module.b.weight.grad is not None  # used on another rank: averaged there
    strict = DDP(TwoHeads())
    try:
        strict.module.a(engine.ones(2, 3)).sum().backward()  # b unused on every rank
    except RuntimeError as e:
        assert "find_unused_parameters" in str(e) and "b.weight" in str(e), e
    else:
        raise AssertionError("an unused parameter went unnoticed")

for what in sys.argv[1:] or ["sgd", "adam", "buffers", "no_sync", "unused"]:
    {"buffers": buffers, "no_sync": no_sync, "unused": unused}.get(what, lambda w=what: train(w))()
dist.destroy_process_group()
print(f"ddp ok {rank}/{world}")

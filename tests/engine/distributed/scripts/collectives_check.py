"""Every collective on this rank's inputs, checked against NumPy on all ranks' inputs (run by the launcher)."""

import numpy as np

import engine
import engine.distributed as dist
from engine.distributed import ReduceOp

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()


def data(r, shape=(3, 4), dtype=np.float32):
    """Rank r's input: known to every rank, so each can compute the expected result."""
    return (np.arange(np.prod(shape)).reshape(shape) * (r + 1) + r).astype(dtype)


def check(name, got, want):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, err_msg=name)


every = np.stack([data(r) for r in range(world)])
reference = {ReduceOp.SUM: every.sum(0), ReduceOp.AVG: every.mean(0), ReduceOp.MAX: every.max(0),
             ReduceOp.MIN: every.min(0), ReduceOp.PRODUCT: every.prod(0)}
for op, want in reference.items():
    t = engine.tensor(data(rank))
    dist.all_reduce(t, op=op)
    check(f"all_reduce {op}", t.numpy(), want)

ints = engine.tensor(data(rank, dtype=np.int64))
dist.all_reduce(ints)
check("all_reduce int64", ints.numpy(), np.stack([data(r, dtype=np.int64) for r in range(world)]).sum(0))

t = engine.tensor(data(rank))
work = dist.all_reduce(t, async_op=True)
work.wait()
assert work.is_completed()
check("all_reduce async", t.numpy(), reference[ReduceOp.SUM])

view = engine.tensor(data(rank)).t()  # non-contiguous: the result lands in the view
dist.all_reduce(view)
check("all_reduce non-contiguous", view.numpy(), reference[ReduceOp.SUM].T)

src = world - 1
t = engine.tensor(data(rank))
dist.broadcast(t, src=src)
check("broadcast", t.numpy(), data(src))

t = engine.tensor(data(rank))
dist.reduce(t, dst=0, op=ReduceOp.MAX)
check("reduce", t.numpy(), reference[ReduceOp.MAX] if rank == 0 else data(rank))

outs = [engine.zeros(3, 4) for _ in range(world)]
dist.all_gather(outs, engine.tensor(data(rank)))
for r in range(world):
    check(f"all_gather[{r}]", outs[r].numpy(), data(r))

out = engine.zeros(world * 3, 4)
dist.all_gather_into_tensor(out, engine.tensor(data(rank)))
check("all_gather_into_tensor", out.numpy(), every.reshape(world * 3, 4))

inp = engine.tensor(data(rank, shape=(world * 2, 3)))
out = engine.zeros(2, 3)
dist.reduce_scatter_tensor(out, inp)
total = np.stack([data(r, shape=(world * 2, 3)) for r in range(world)]).sum(0)
check("reduce_scatter_tensor", out.numpy(), total[rank * 2:(rank + 1) * 2])

gl = [engine.zeros(3, 4) for _ in range(world)] if rank == 1 else None
dist.gather(engine.tensor(data(rank)), gl, dst=1)
if rank == 1:
    for r in range(world):
        check(f"gather[{r}]", gl[r].numpy(), data(r))

out = engine.zeros(3, 4)
dist.scatter(out, [engine.tensor(data(10 + r)) for r in range(world)] if rank == 0 else None, src=0)
check("scatter", out.numpy(), data(10 + rank))

inp = engine.tensor(data(rank, shape=(world * 2, 3)))
out = engine.zeros(world * 2, 3)
dist.all_to_all_single(out, inp)
want = np.concatenate([data(r, shape=(world * 2, 3))[rank * 2:(rank + 1) * 2] for r in range(world)])
check("all_to_all_single", out.numpy(), want)

# uneven splits: rank r sends (i + 1) rows to rank i, so it receives rank + 1 rows from each
in_splits = [i + 1 for i in range(world)]
inp = engine.tensor(data(rank, shape=(sum(in_splits), 2)))
out = engine.zeros((rank + 1) * world, 2)
dist.all_to_all_single(out, inp, output_split_sizes=[rank + 1] * world, input_split_sizes=in_splits)
starts = np.cumsum([0, *in_splits])
want = np.concatenate([data(r, shape=(sum(in_splits), 2))[starts[rank]:starts[rank + 1]] for r in range(world)])
check("all_to_all_single splits", out.numpy(), want)

peer = (rank + 1) % world
left = (rank - 1) % world
got = engine.zeros(3, 4)
if rank % 2 == 0:
    dist.send(engine.tensor(data(rank)), dst=peer)
    sender = dist.recv(got, src=left)
else:
    sender = dist.recv(got)
    dist.send(engine.tensor(data(rank)), dst=peer)
assert sender == left, sender
check("send/recv", got.numpy(), data(left))
reqs = [dist.isend(engine.tensor(data(rank)), dst=peer), dist.irecv(got, src=left)]
for w in reqs:
    w.wait()
check("isend/irecv", got.numpy(), data(left))

objs = [{"rank": rank, "xs": [1, 2]}, "x"] if rank == 0 else [None, None]
dist.broadcast_object_list(objs, src=0)
assert objs == [{"rank": 0, "xs": [1, 2]}, "x"], objs
gathered = [None] * world
dist.all_gather_object(gathered, {"r": rank})
assert gathered == [{"r": r} for r in range(world)], gathered
try:
    dist.all_gather_object(gathered, object())
except TypeError as e:
    assert "JSON" in str(e)
else:
    raise AssertionError("a non-JSON object was sent")

evens = dist.new_group([r for r in range(world) if r % 2 == 0])
if rank % 2 == 0:
    t = engine.tensor(data(rank))
    dist.all_reduce(t, group=evens)
    check("new_group all_reduce", t.numpy(), sum(data(r) for r in range(0, world, 2)))
    assert dist.get_world_size(evens) == len(range(0, world, 2))
    t = engine.tensor(data(rank))
    dist.broadcast(t, src=0, group=evens)
    check("new_group broadcast", t.numpy(), data(0))
else:
    assert evens is dist.GroupMember.NON_GROUP_MEMBER
    assert dist.get_rank(evens) == -1

dist.barrier()
assert dist.get_backend() == "gloo" and dist.is_initialized()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"collectives ok {rank}/{world}")

"""engine.distributed in this process (world size 1): names, errors, the object rule, the sampler."""

import numpy as np
import pytest

import engine
import engine.distributed as dist
from engine import nn
from engine.nn.parallel import DistributedDataParallel
from engine.utils.data.distributed import DistributedSampler


@pytest.fixture
def world(mpi, tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_everything_needs_a_process_group_first():
    assert dist.is_available() and not dist.is_initialized()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.all_reduce(engine.ones(2))
    with pytest.raises(ValueError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))


def test_unknown_backend_and_bad_timeout_are_refused():
    with pytest.raises(ValueError, match="Unknown backend"):
        dist.init_process_group("ucc", init_method="file:///tmp/x", rank=0, world_size=1)
    with pytest.raises(TypeError, match="timedelta"):
        dist.init_process_group("gloo", timeout=5)


def test_world_of_one(world):
    assert (dist.get_rank(), dist.get_world_size(), dist.get_backend()) == (0, 1, "gloo")
    assert dist.is_mpi_available() and dist.is_gloo_available()
    with pytest.raises(ValueError, match="twice"):
        dist.init_process_group("gloo")
    t = engine.tensor([1.0, 2.0])
    work = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    assert work.wait() and work.is_completed()
    assert t.tolist() == [1.0, 2.0]
    version = t._version
    dist.broadcast(t, src=0)
    assert t._version == version + 1  # an in-place write, as PyTorch counts it
    half = engine.tensor([1.0, 3.0], dtype=engine.float16)
    dist.all_reduce(half, op=dist.ReduceOp.MAX)
    assert half.dtype == engine.float16 and half.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="AVG needs a floating-point"):
        dist.all_reduce(engine.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="not part of the group"):
        dist.broadcast(t, src=3)
    dist.barrier()


def test_objects_travel_as_json_only(world):
    objs = [{"a": [1, 2.5, None]}, "s"]
    dist.broadcast_object_list(objs, src=0)
    assert objs == [{"a": [1, 2.5, None]}, "s"]
    out = [None]
    dist.all_gather_object(out, {"k": 1})
    assert out == [{"k": 1}]
    with pytest.raises(TypeError, match="never pickle"):
        dist.all_gather_object(out, np.zeros(2))


def test_ddp_wraps_the_module_as_pytorch(world):
    model = nn.Linear(3, 2)
    ddp = DistributedDataParallel(model)
    assert ddp.module is model
    assert list(ddp.state_dict()) == ["module.weight", "module.bias"]
    x = engine.randn(4, 3)
    ddp(x).sum().backward()
    ref = nn.Linear(3, 2)
    ref.load_state_dict(model.state_dict())
    ref(x).sum().backward()
    np.testing.assert_allclose(model.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="doesn't have any parameter"):
        DistributedDataParallel(nn.ReLU())


def test_sampler_takes_rank_and_size_from_the_group(world):
    sampler = DistributedSampler(range(5), shuffle=False)
    assert (sampler.num_replicas, sampler.rank, list(sampler)) == (1, 0, [0, 1, 2, 3, 4])


def test_sampler_order_matches_torch_without_shuffle(torch):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for n, world, rank, drop_last in [(10, 3, 1, False), (10, 3, 2, True), (7, 4, 3, False)]:
        ours = list(DistributedSampler(range(n), world, rank, shuffle=False, drop_last=drop_last))
        assert ours == list(TorchSampler(range(n), world, rank, shuffle=False, drop_last=drop_last))


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shuffled_order_matches_torch(torch, world_size, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for n in (10, 11, 1001):
        for rank in range(world_size):
            ours = DistributedSampler(range(n), world_size, rank, seed=4, drop_last=drop_last)
            theirs = TorchSampler(range(n), world_size, rank, seed=4, drop_last=drop_last)
            for epoch in range(3):
                ours.set_epoch(epoch)
                theirs.set_epoch(epoch)
                assert list(ours) == list(theirs), (n, rank, epoch)


def test_sampler_shuffles_per_epoch_and_shares_out_every_index():
    shards = [DistributedSampler(range(11), 3, r, seed=5) for r in range(3)]
    first = [list(s) for s in shards]
    assert set().union(*map(set, first)) == set(range(11)) and all(len(s) == 4 for s in first)
    for s in shards:
        s.set_epoch(1)
    assert [list(s) for s in shards] != first

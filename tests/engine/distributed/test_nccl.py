"""The nccl backend on a real GPU (world size 1; one process per GPU): skipped without CuPy, CUDA and NCCL."""

import numpy as np
import pytest

import engine
import engine.distributed as dist
from engine import nn
from engine.nn.parallel import DistributedDataParallel

pytestmark = pytest.mark.gpu


@pytest.fixture
def nccl_world(tmp_path):
    if not dist.is_nccl_available():
        pytest.skip("NCCL through CuPy needs a CUDA device")
    dist.init_process_group("nccl", init_method=f"file://{tmp_path}/store", rank=0, world_size=1,
                            device_id=engine.device("cuda:0"))
    yield
    dist.destroy_process_group()


def test_nccl_collectives_world_of_one(nccl_world):
    assert dist.get_backend() == "nccl"
    t = engine.tensor([1.0, 2.0, 3.0], device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    dist.broadcast(t, src=0)
    out = engine.zeros(3, device="cuda")
    dist.all_gather_into_tensor(out, t)
    np.testing.assert_allclose(out.cpu().numpy(), [1.0, 2.0, 3.0])
    objs = [None]
    dist.all_gather_object(objs, {"gpu": True})
    assert objs == [{"gpu": True}]


def test_ddp_on_the_gpu(nccl_world):
    model = nn.Linear(4, 2).cuda()
    ddp = DistributedDataParallel(model, device_ids=[0])
    x = engine.randn(8, 4, device="cuda")
    ddp(x).sum().backward()
    ref = nn.Linear(4, 2).cuda()
    ref.load_state_dict(model.state_dict())
    ref(x).sum().backward()
    np.testing.assert_allclose(model.weight.grad.cpu().numpy(), ref.weight.grad.cpu().numpy(), rtol=1e-5)

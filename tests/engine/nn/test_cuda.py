"""The nn layer and functional tables on device ``cuda`` (real CuPy, or tests/fake_cupy in CI) equal CPU."""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_functional import CASES
from test_layers import LAYERS, _inputs

import engine
import engine.nn.functional as F
from engine import nn as enn

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend"),
              pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")]
TOL = {"rtol": 1e-6, "atol": 1e-9}


def _on(device: str):
    """``engine`` whose ``tensor`` factory puts new tensors on ``device`` (for the tables' ``lib``)."""
    lib = types.SimpleNamespace(**{k: getattr(engine, k) for k in dir(engine) if not k.startswith("__")})
    lib.tensor = lambda data, **kw: engine.tensor(data, **kw).to(device)
    return lib


def _host(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def _same(cpu, cuda, what: str) -> None:
    assert cuda.device.type == "cuda", f"{what} left the device"
    np.testing.assert_allclose(_host(cuda), _host(cpu), err_msg=what, **TOL)


def _run_layer(module, arrays, kw, device):
    inputs = [engine.tensor(a, requires_grad=a.dtype.kind == "f").to(device) if not isinstance(a, engine.Tensor)
              else a.to(device) for a in arrays]
    inputs = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs]
    out = module(*inputs, **(kw(_on(device)) if kw else {}))
    outs = [o for o in (out if isinstance(out, tuple | list) else (out,)) if isinstance(o, engine.Tensor)]
    flat = []
    for o in outs:
        flat += list(o) if isinstance(o, tuple | list) else [o]
    loss = sum((o.double() * (k + 1)).sum() for k, o in enumerate(flat) if o.requires_grad)
    if isinstance(loss, engine.Tensor):
        loss.backward()
    return flat, inputs


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize(("name", "factory", "shapes", "kw"), LAYERS, ids=[row[0] for row in LAYERS])
def test_layer_on_cuda_matches_cpu(name, factory, shapes, kw, mode):
    if mode == "train" and ("dropout" in name or "rrelu" in name):
        pytest.skip("random in training mode: CPU and CUDA streams differ")
    engine.manual_seed(0)
    cpu_module = factory(enn).double().train(mode == "train")
    cuda_module = copy.deepcopy(cpu_module).to("cuda")
    arrays = _inputs(shapes, np.float64)
    cpu_out, cpu_in = _run_layer(cpu_module, arrays, kw, "cpu")
    cuda_out, cuda_in = _run_layer(cuda_module, arrays, kw, "cuda")
    for k, (c, g) in enumerate(zip(cpu_out, cuda_out, strict=True)):
        _same(c, g, f"{name} output {k}")
    for k, (c, g) in enumerate(zip(cpu_in, cuda_in, strict=True)):
        if c.grad is not None:
            _same(c.grad, g.grad, f"{name} grad of input {k}")
    cuda_params = dict(cuda_module.named_parameters())
    for pname, p in cpu_module.named_parameters():
        if p.grad is not None:
            _same(p.grad, cuda_params[pname].grad, f"{name} grad of {pname}")
    cuda_state = cuda_module.state_dict()
    for key, value in cpu_module.state_dict().items():
        np.testing.assert_allclose(_host(cuda_state[key]), _host(value), err_msg=key, **TOL)


@pytest.mark.parametrize(("name", "fn", "inputs"), CASES, ids=[c[0] for c in CASES])
def test_functional_on_cuda_matches_cpu(name, fn, inputs):
    results = []
    for device in ("cpu", "cuda"):
        xs = [engine.tensor(x).to(device).requires_grad_() for x in inputs]
        out = fn(F, _on(device), *xs)
        out.backward(engine.tensor(np.random.default_rng(1).standard_normal(tuple(out.shape))).to(device))
        results.append((out, xs))
    (c_out, c_in), (g_out, g_in) = results
    _same(c_out, g_out, f"{name} output")
    for k, (c, g) in enumerate(zip(c_in, g_in, strict=True)):
        if c.grad is not None:
            _same(c.grad, g.grad, f"{name} grad of input {k}")


def test_an_index_out_of_range_on_cuda_is_an_error_not_a_wrong_row():
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(engine.randn(2, 3, device="cuda"), engine.tensor([0, 3], device="cuda"))
    with pytest.raises(IndexError, match="index out of range"):
        F.embedding(engine.tensor([[0, 5]], device="cuda"), engine.randn(5, 2, device="cuda"))


def test_training_step_on_cuda_copies_only_its_index_check_to_the_host(cuda_backend):
    """Forward, backward, clipping and an AdamW step of a small CNN + MLP stay on the device (fake_cupy counts
    every device-to-host copy; a real GPU would stall on each)."""
    stats = getattr(cuda_backend, "_Stats", None)
    if stats is None:
        pytest.skip("host copies are counted by fake_cupy only")
    engine.manual_seed(0)
    model = enn.Sequential(enn.Conv2d(3, 8, 3, padding=1), enn.BatchNorm2d(8), enn.ReLU(), enn.MaxPool2d(2),
                           enn.Flatten(), enn.Linear(8 * 4 * 4, 32), enn.LayerNorm(32), enn.GELU(), enn.Dropout(0.1),
                           enn.Linear(32, 10)).to("cuda")
    opt = engine.optim.AdamW(model.parameters(), lr=1e-3)
    x = engine.randn(4, 3, 8, 8, device="cuda")
    y = engine.randint(0, 10, (4,), device="cuda")
    for _ in range(2):  # the second step runs with optimizer state in place
        before = stats.host_syncs
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        enn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # NOTE: the one copy is cross_entropy's target-range check (a bad target is an error, as in PyTorch)
        assert stats.host_syncs == before + 1, "a training step copied device data to the host"
    assert loss.device.type == "cuda"


def test_transformer_step_under_autocast_copies_only_its_index_checks_to_the_host(cuda_backend):
    stats = getattr(cuda_backend, "_Stats", None)
    if stats is None:
        pytest.skip("host copies are counted by fake_cupy only")
    engine.manual_seed(0)
    emb, head = enn.Embedding(50, 32).to("cuda"), enn.Linear(32, 50).to("cuda")
    layer = enn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True, norm_first=True).to("cuda")
    params = [*emb.parameters(), *layer.parameters(), *head.parameters()]
    opt = engine.optim.Adam(params, lr=1e-3)
    idx = engine.randint(0, 50, (2, 16), device="cuda")
    for _ in range(2):
        before = stats.host_syncs
        opt.zero_grad()
        with engine.autocast("cuda", dtype=engine.bfloat16):
            h = layer(emb(idx))
            h = F.scaled_dot_product_attention(h[:, None], h[:, None], h[:, None], is_causal=True)[:, 0]
            loss = F.cross_entropy(head(F.silu(h)).reshape(-1, 50).float(), idx.reshape(-1))
        loss.backward()
        opt.step()
        # NOTE: the two copies are the index-range checks of the embedding and of cross_entropy's targets
        assert stats.host_syncs == before + 2, "a transformer training step copied device data to the host"

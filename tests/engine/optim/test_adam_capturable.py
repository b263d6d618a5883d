"""``Adam``/``AdamW(capturable=True)``: the step count is a 0-d float32 tensor on the parameter's device and the
bias corrections are computed there, with PyTorch's error off the GPU; on device cuda (real CuPy, or
tests/fake_cupy in CI) it equals ``capturable=False`` and copies nothing to the host; state dicts round-trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
from optim_models import B1, W1, W2, X, Y

import engine

CASES = [("Adam", {"lr": 0.05}), ("Adam", {"lr": 0.05, "weight_decay": 0.1, "amsgrad": True}),
         ("AdamW", {"lr": 0.05, "weight_decay": 0.1}), ("Adam", {"lr": 0.05, "maximize": True, "betas": (0.8, 0.9)})]
IDS = ["adam", "adam_l2_amsgrad", "adamw", "adam_maximize"]


def _params(device):
    return [engine.tensor(a.copy(), dtype=engine.float64).to(device).requires_grad_() for a in (W1, B1, W2)]


def _run(opt, params, steps, device, syncs=None):
    x, y = engine.tensor(X).to(device), engine.tensor(Y).to(device)
    for k in steps:
        opt.zero_grad()
        w1, b1, w2 = params
        (((x * (1 + 0.1 * k) @ w1 + b1).tanh() @ w2 - y) ** 2).mean().backward()
        before = syncs.host_syncs if syncs else 0
        opt.step()
        if syncs:
            assert syncs.host_syncs == before, "a capturable step copied device data to the host"
    return [p.detach().cpu().numpy() for p in params]


def test_capturable_on_cpu_raises_as_torch_does(torch):
    p = engine.zeros(3, requires_grad=True)
    for cls in (engine.optim.Adam, engine.optim.AdamW):
        opt = cls([p], capturable=True)
        assert opt.param_groups[0]["capturable"] is True
        p.grad = engine.ones(3)
        with pytest.raises(AssertionError) as ours:
            opt.step()
        q = torch.nn.Parameter(torch.zeros(3))
        q.grad = torch.ones(3)
        with pytest.raises(AssertionError) as theirs:
            getattr(torch.optim, cls.__name__)([q], capturable=True).step()
        assert str(ours.value) == str(theirs.value)
        assert float(opt.state[p]["step"]) == 0.0  # as torch: the state is made, then the check refuses the step
        np.testing.assert_array_equal(p.detach().numpy(), np.zeros(3))


@pytest.mark.gpu
@pytest.mark.usefixtures("cuda_backend")
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_capturable_on_cuda_equals_capturable_false_without_host_copies(cuda_backend, name, options):
    stats = getattr(cuda_backend, "_Stats", None)  # only the fake counts host copies
    cls = getattr(engine.optim, name)
    want_params = _params("cuda")
    want = _run(cls(want_params, **options), want_params, range(12), "cuda")
    params = _params("cuda")
    opt = cls(params, capturable=True, **options)
    got = _run(opt, params, range(12), "cuda", stats)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for p in params:
        step = opt.state[p]["step"]
        assert step.device.type == "cuda" and step.dtype == engine.float32 and step.shape == ()
        assert float(step.cpu()) == 12.0


@pytest.mark.gpu
@pytest.mark.usefixtures("cuda_backend")
def test_capturable_state_dicts_round_trip_and_load_steps_onto_the_device(cuda_backend):
    params = _params("cuda")
    opt = engine.optim.Adam(params, lr=0.05, capturable=True)
    _run(opt, params, range(5), "cuda")
    buffer = io.BytesIO()
    engine.save({"params": [p.detach() for p in params], "optimizer": opt.state_dict()}, buffer)
    saved = engine.load(io.BytesIO(buffer.getvalue()))
    assert saved["optimizer"]["state"][0]["step"].device.type == "cuda"
    resumed = [p.clone().detach().requires_grad_(True) for p in saved["params"]]
    opt2 = engine.optim.Adam(resumed, lr=0.05)  # the saved groups bring capturable=True, as in torch
    opt2.load_state_dict(saved["optimizer"])
    assert opt2.param_groups[0]["capturable"] is True
    for a, b in zip(_run(opt, params, range(5, 9), "cuda"), _run(opt2, resumed, range(5, 9), "cuda"), strict=True):
        np.testing.assert_array_equal(a, b)
    # a host-side checkpoint (step a CPU tensor, or a plain number in an old file) lands on the device
    host = engine.optim.Adam(_params("cuda"), lr=0.05)
    state = opt.state_dict()
    state = {"state": {i: {**s, "step": (float(s["step"].cpu()) if i == 0 else s["step"].cpu())}
                       for i, s in state["state"].items()}, "param_groups": state["param_groups"]}
    host.load_state_dict(state)
    for p in host.param_groups[0]["params"]:
        step = host.state[p]["step"]
        assert step.device.type == "cuda" and step.dtype == engine.float32 and float(step.cpu()) == 9.0


@pytest.mark.gpu
@pytest.mark.usefixtures("cuda_backend")
@pytest.mark.parametrize(("name", "options"), CASES[:3], ids=IDS[:3])
def test_a_capturable_step_recorded_into_a_cuda_graph_replays_with_per_step_bias_corrections(cuda_backend, name,
                                                                                                options):
    """torch's recipe: warm up, point .grad at static tensors, capture ``opt.step()`` once, then copy each step's
    gradients in and replay: the device-side step count moves the bias corrections at every replay."""
    cls = getattr(engine.optim, name)
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal(a.shape) for a in (W1, B1, W2)] for _ in range(6)]
    want_params = _params("cuda")
    want_opt = cls(want_params, **options)
    params = _params("cuda")
    opt = cls(params, capturable=True, **options)
    static = [engine.zeros(p.shape, dtype=p.dtype, device="cuda") for p in params]
    graph = engine.cuda.CUDAGraph()
    for k, step_grads in enumerate(grads):
        for p, g in zip(want_params, step_grads, strict=True):
            p.grad = engine.tensor(g).to("cuda")
        want_opt.step()
        for s, g in zip(static, step_grads, strict=True):
            s.copy_(engine.tensor(g).to("cuda"))
        if k == 0:  # the warm-up makes the state outside any capture
            for p, s in zip(params, static, strict=True):
                p.grad = s
            opt.step()
        elif k == 1:
            with engine.cuda.graph(graph):
                opt.step()
            graph.replay()
        else:
            graph.replay()
    for a, b in zip(params, want_params, strict=True):
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy(), rtol=1e-12, atol=1e-14)
    assert float(opt.state[params[0]]["step"].cpu()) == len(grads)

"""engine.compile on device cuda (real CuPy, or tests/fake_cupy in CI, which runs the generated CUDA C):
CuPy kernels from the shared IR equal eager, are cached across compiles, replay without host copies, and
``mode="reduce-overhead"`` captures one CUDA graph and replays it."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
import engine.nn.functional as F
from engine._inductor import CompiledFxGraph, cache

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cuda_backend")]


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    previous = engine.get_default_dtype()
    engine.set_default_dtype(getattr(engine, request.param))
    yield getattr(engine, request.param)
    engine.set_default_dtype(previous)


def tolerance(dtype) -> dict:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == engine.float64 else {"rtol": 2e-4, "atol": 2e-5}


def host(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def host_syncs(cuda_backend) -> int | None:
    stats = getattr(cuda_backend, "_Stats", None)  # only the fake counts device-to-host copies
    return stats.host_syncs if stats is not None else None


class Head(nn.Module):
    """Linear-GELU-Linear, layer norm, then a softmax: pointwise groups, row reductions and GEMMs."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.norm = nn.Linear(8, 32), nn.Linear(32, 6), nn.LayerNorm(6)

    def forward(self, x):
        h = self.norm(self.fc2(F.gelu(self.fc1(x))))
        return F.softmax(h * 2.0, dim=-1), (h.relu() - 0.5).abs().amax(dim=0)


def twins(make):
    engine.manual_seed(3)
    a = make().to("cuda")
    engine.manual_seed(3)
    return a, make().to("cuda")


def compiled_graph(compiled) -> CompiledFxGraph:
    """The inductor program behind a compiled callable's (single) cache entry."""
    (entry,) = compiled._compiled_fn._entries() if hasattr(compiled, "_compiled_fn") else compiled._entries()
    runner = getattr(entry.runner, "__wrapped__", entry.runner)
    runner = getattr(runner, "forward", runner)
    assert isinstance(runner, CompiledFxGraph), f"not compiled to CUDA kernels: {runner!r}"
    return runner


def test_compiled_model_equals_eager_with_cuda_kernels(cuda_backend, dtype):
    eager, model = twins(Head)
    compiled = engine.compile(model)
    with engine.no_grad():
        for _ in range(3):
            x = engine.randn(5, 8, device="cuda")
            got, want = compiled(x), eager(x)
            for g, w in zip(got, want, strict=True):
                assert g.device.type == "cuda" and g.dtype == w.dtype
                np.testing.assert_allclose(host(g), host(w), **tolerance(dtype))
    info = compiled_graph(compiled).info
    assert info["device"] == "cuda:0" and info["fallbacks"] == []
    sources = "\n".join(compiled_graph(compiled).kernel_sources)
    assert "ElementwiseKernel(" in sources and "ReductionKernel(" in sources and "erf(" in sources


def test_a_new_compile_of_the_same_graph_reuses_the_kernels(cuda_backend):
    model = Head().to("cuda")
    with engine.no_grad():
        engine.compile(model)(engine.randn(4, 8, device="cuda"))
        built, hits = cache.cuda_stats["built"], cache.cuda_stats["hits"]
        again = engine.compile(model)
        again(engine.randn(7, 8, device="cuda"))  # another batch size too: the sources name no size
    sources = compiled_graph(again).kernel_sources
    assert sources and cache.cuda_stats["built"] == built, "a recompile built CUDA kernels again"
    assert cache.cuda_stats["hits"] >= hits + len(sources)


def test_a_training_step_compiles_on_cuda_and_equals_eager_without_host_copies(cuda_backend, dtype):
    def make():
        return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 3))

    for make_opt in (lambda p: engine.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
                     lambda p: engine.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)):
        eager, model = twins(make)
        opt_e, opt_c = make_opt(eager.parameters()), make_opt(model.parameters())

        def step(net, opt, x, y):
            opt.zero_grad()
            loss = F.mse_loss(net(x), y)
            loss.backward()
            opt.step()
            return loss

        compiled = engine.compile(step)
        data = [(engine.randn(5, 6, device="cuda"), engine.randn(5, 3, device="cuda")) for _ in range(4)]
        for i, (x, y) in enumerate(data):
            want = step(eager, opt_e, x, y)
            before = host_syncs(cuda_backend)
            got = compiled(model, opt_c, x, y)
            if before is not None and i >= 2:  # a replay: no device-to-host copy anywhere in the step
                assert host_syncs(cuda_backend) == before, "the compiled step copied device data to the host"
            np.testing.assert_allclose(host(got), host(want), **tolerance(dtype))
        for a, b in zip(model.parameters(), eager.parameters(), strict=True):
            assert a.device.type == "cuda"
            np.testing.assert_allclose(host(a), host(b), **tolerance(dtype))
        program = compiled_graph(compiled)._first
        assert any(s.value is not None and s.value.op == "optimizer_step" for s in program.schedule.steps)
        assert program.fallbacks == ["engine._dynamo.graph_ops.call_method"]  # zero_grad: .grad = None on the host


def test_an_op_without_a_gpu_lowering_runs_on_the_device_inside_the_replay(cuda_backend):
    lin = nn.Linear(4, 6).to("cuda")

    def f(x):
        return (engine.cumsum(lin(x).relu(), dim=1) * 2.0).sum(-1)

    for mode in ("default", "reduce-overhead"):
        compiled = engine.compile(f, mode=mode)
        with engine.no_grad():
            for _ in range(4):
                x = engine.randn(3, 4, device="cuda")
                before = host_syncs(cuda_backend)
                got = compiled(x)
                if before is not None:
                    assert host_syncs(cuda_backend) == before, "the replay copied device data to the host"
                np.testing.assert_allclose(host(got), host(f(x)), **tolerance(got.dtype))
        info = compiled_graph(compiled).info
        assert any("cumsum" in name for name in info["fallbacks"])
        if mode == "reduce-overhead":
            assert info["cudagraph"]["captures"] == 1 and info["cudagraph"]["reason"] is None


def test_reduce_overhead_captures_one_cuda_graph_and_replays_it(cuda_backend, monkeypatch):
    counts = {"captures": 0, "launches": 0}
    if cuda_backend.__name__ == "fake_cupy":  # the fake records captures: count them at the source
        stream_cls, graph_cls = cuda_backend.cuda.Stream, cuda_backend.cuda.Graph
        begin, launch = stream_cls.begin_capture, graph_cls.launch

        def counting_begin(self, *args, **kwargs):
            counts["captures"] += 1
            return begin(self, *args, **kwargs)

        def counting_launch(self, *args, **kwargs):
            counts["launches"] += 1
            return launch(self, *args, **kwargs)

        monkeypatch.setattr(stream_cls, "begin_capture", counting_begin)
        monkeypatch.setattr(graph_cls, "launch", counting_launch)
    eager, model = twins(Head)
    compiled = engine.compile(model, mode="reduce-overhead")
    n = 6
    with engine.no_grad():
        previous = None
        for _ in range(n):
            x = engine.randn(5, 8, device="cuda")
            got = compiled(x)
            want = eager(x)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(host(g), host(w), **tolerance(g.dtype))
            if previous is not None:  # a new tensor each call, over the graph's static output memory
                assert got[0] is not previous
            previous = got[0]
    stats = compiled_graph(compiled).info["cudagraph"]
    assert stats["captures"] == 1 and stats["replays"] == n - 1 and stats["reason"] is None
    assert stats["steps"]["captured"] == stats["steps"]["of"]  # a forward has no host effect: the whole program
    if cuda_backend.__name__ == "fake_cupy":
        assert counts == {"captures": 1, "launches": n - 1}


def _count_graphs(cuda_backend, monkeypatch) -> dict:
    """Captures begun and graphs launched, counted at the fake's source (empty on real CuPy)."""
    counts: dict = {}
    if cuda_backend.__name__ == "fake_cupy":
        counts.update(captures=0, launches=0)
        stream_cls, graph_cls = cuda_backend.cuda.Stream, cuda_backend.cuda.Graph
        begin, launch = stream_cls.begin_capture, graph_cls.launch

        def counting_begin(self, *args, **kwargs):
            counts["captures"] += 1
            return begin(self, *args, **kwargs)

        def counting_launch(self, *args, **kwargs):
            counts["launches"] += 1
            return launch(self, *args, **kwargs)

        monkeypatch.setattr(stream_cls, "begin_capture", counting_begin)
        monkeypatch.setattr(graph_cls, "launch", counting_launch)
    return counts


def _train_step(net, opt, x, y):
    opt.zero_grad()
    loss = F.mse_loss(net(x), y)
    loss.backward()
    opt.step()
    return loss


_STEP_OPTIMIZERS = {"adam": lambda p: engine.optim.Adam(p, lr=0.1),
                    "adamw_amsgrad": lambda p: engine.optim.AdamW(p, lr=0.05, weight_decay=0.1, amsgrad=True),
                    "adam_l2_maximize": lambda p: engine.optim.Adam(p, lr=0.05, weight_decay=0.01, maximize=True),
                    "sgd_nesterov": lambda p: engine.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)}


@pytest.mark.parametrize("kind", list(_STEP_OPTIMIZERS))
def test_reduce_overhead_records_the_whole_training_step_in_one_cuda_graph(cuda_backend, monkeypatch, kind):
    """Forward, backward, the .grad delivery and the optimizer step (Adam's step count and bias corrections on the
    device: capturable, switched on by the compile as torch.compile does) are one graph, launched once a call."""
    previous = engine.get_default_dtype()
    engine.set_default_dtype(engine.float64)
    try:
        counts = _count_graphs(cuda_backend, monkeypatch)
        eager, model = twins(lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(),
                                                   nn.Linear(8, 2)))
        opt_e, opt_c = (_STEP_OPTIMIZERS[kind](m.parameters()) for m in (eager, model))
        compiled = engine.compile(_train_step, mode="reduce-overhead")
        n = 7
        for i in range(n):
            x, y = engine.randn(4, 6, device="cuda"), engine.randn(4, 2, device="cuda")
            want = _train_step(eager, opt_e, x, y)
            before = host_syncs(cuda_backend)
            got = compiled(model, opt_c, x, y)
            if before is not None and i >= 2:
                assert host_syncs(cuda_backend) == before, "the graphed step copied device data to the host"
            np.testing.assert_allclose(host(got), host(want), rtol=1e-5, atol=1e-5)
            for a, b in zip(model.parameters(), eager.parameters(), strict=True):  # every step: bias corrections
                np.testing.assert_allclose(host(a), host(b), rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(host(a.grad), host(b.grad), rtol=1e-5, atol=1e-5)
        program = compiled_graph(compiled)._first
        stats = compiled_graph(compiled).info["cudagraph"]
        # call 1 is the frontend's own eager run, call 2 the warm-up; the n - 1 program calls after it are one
        # capture (whose run is a launch: a capture runs nothing) and launches
        assert (stats["captures"], stats["replays"], stats["reason"], stats["plain_calls"]) == (1, n - 2, None, [])
        if counts:
            assert counts == {"captures": 1, "launches": n - 2}
        # every step but the leading zero_grad (.grad = None, host only) is inside the graph
        assert stats["steps"]["captured"] == stats["steps"]["of"] - 1
        first = program.schedule.steps[0]
        assert first.kind == "fallback" and first.value.attrs["label"] == "engine._dynamo.graph_ops.call_method"
        ops = [s.value.op for s in program.schedule.steps[1:] if s.kind == "effect"]
        assert ops == ["deliver_grads", "optimizer_step"]
        if kind != "sgd_nesterov":
            assert all(group["capturable"] for group in opt_c.param_groups)
            for p in model.parameters():
                step = opt_c.state[p]["step"]
                assert step.device.type == "cuda" and step.dtype == engine.float32 and float(step.cpu()) == n
    finally:
        engine.set_default_dtype(previous)


def test_a_graphed_training_steps_optimizer_checkpoint_loads_and_continues_eagerly(cuda_backend, tmp_path):
    eager, model = twins(lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)))
    opt_e, opt_c = (engine.optim.AdamW(m.parameters(), lr=0.05) for m in (eager, model))
    compiled = engine.compile(_train_step, mode="reduce-overhead")
    data = [(engine.randn(4, 6, device="cuda"), engine.randn(4, 2, device="cuda")) for _ in range(8)]
    for x, y in data[:5]:
        compiled(model, opt_c, x, y)
        _train_step(eager, opt_e, x, y)
    path = tmp_path / "ckpt.pt"
    engine.save({"model": model.state_dict(), "optimizer": opt_c.state_dict()}, path)
    saved = engine.load(path)
    assert saved["optimizer"]["state"][0]["step"].device.type == "cuda"
    engine.manual_seed(5)
    resumed = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)).to("cuda")
    resumed.load_state_dict(saved["model"])
    opt_r = engine.optim.AdamW(resumed.parameters(), lr=0.05)
    opt_r.load_state_dict(saved["optimizer"])
    for x, y in data[5:]:
        _train_step(eager, opt_e, x, y)
        _train_step(resumed, opt_r, x, y)
    for a, b in zip(resumed.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(host(a), host(b), **tolerance(a.dtype))
    assert float(opt_r.state[next(iter(resumed.parameters()))]["step"].cpu()) == 8


def test_a_graphed_step_without_zero_grad_accumulates_into_the_grads_and_delivers_input_grads(cuda_backend):
    """No zero_grad: the .grad already there is copied into a static buffer that the graph adds to, so the
    whole program (every step) is the graph; an input that requires grad gets its .grad each call."""
    eager, model = twins(lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)))
    opt_e, opt_c = (engine.optim.Adam(m.parameters(), lr=0.05) for m in (eager, model))

    def step(net, opt, x, y):
        loss = F.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = engine.compile(step, mode="reduce-overhead")
    for _ in range(6):
        x, y = engine.randn(4, 6, device="cuda"), engine.randn(4, 2, device="cuda")
        x_c, x_e = x.clone().requires_grad_(), x.clone().requires_grad_()
        np.testing.assert_allclose(host(compiled(model, opt_c, x_c, y)), host(step(eager, opt_e, x_e, y)),
                                   **tolerance(x.dtype))
        np.testing.assert_allclose(host(x_c.grad), host(x_e.grad), **tolerance(x.dtype))
    for a, b in zip(model.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(host(a), host(b), **tolerance(a.dtype))
        np.testing.assert_allclose(host(a.grad), host(b.grad), **tolerance(a.dtype))
    stats = compiled_graph(compiled).info["cudagraph"]
    assert (stats["captures"], stats["replays"]) == (1, 4)
    assert stats["steps"]["captured"] == stats["steps"]["of"]


def test_a_graphed_step_is_recorded_again_when_the_learning_rate_changes(cuda_backend, caplog):
    eager, model = twins(lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)))
    opt_e, opt_c = (engine.optim.Adam(m.parameters(), lr=0.1) for m in (eager, model))
    compiled = engine.compile(_train_step, mode="reduce-overhead")
    with caplog.at_level("INFO", logger="engine._inductor.cudagraphs"):
        for i in range(8):
            if i == 5:  # an LR schedule outside the step: the recorded kernels hold the old rate
                for opt in (opt_e, opt_c):
                    opt.param_groups[0]["lr"] = 0.02
            if i == 6:  # a step hook runs on the host: that call runs without the graph
                handle = opt_c.register_step_post_hook(lambda *args: None)
            if i == 7:
                handle.remove()
            x, y = engine.randn(4, 6, device="cuda"), engine.randn(4, 2, device="cuda")
            np.testing.assert_allclose(host(compiled(model, opt_c, x, y)), host(_train_step(eager, opt_e, x, y)),
                                       **tolerance(x.dtype))
    for a, b in zip(model.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(host(a), host(b), **tolerance(a.dtype))
    stats = compiled_graph(compiled).info["cudagraph"]
    # calls 3-5 and 8 launch (one graph each for lr=0.1 and lr=0.02, recorded at calls 3 and 6); call 7 runs plainly
    assert stats["captures"] == 2 and stats["replays"] == 5 and stats["plain_calls"] == [
        "optimizer step hooks run on the host"]
    assert "a call without the CUDA graph" in caplog.text


def test_reduce_overhead_falls_back_to_plain_replay_when_the_capture_meets_a_host_sync(cuda_backend, caplog):
    emb = nn.Embedding(10, 4).to("cuda")  # its eager kernel checks the indices on the host: no graph can hold it
    compiled = engine.compile(lambda i: emb(i).tanh() * 2.0, mode="reduce-overhead")
    with engine.no_grad(), caplog.at_level("INFO", logger="engine._inductor.cudagraphs"):
        for _ in range(4):
            i = engine.randint(0, 10, (3, 5), device="cuda")
            got = compiled(i)
            np.testing.assert_allclose(host(got), host(emb(i).tanh() * 2.0), **tolerance(got.dtype))
    stats = compiled_graph(compiled).info["cudagraph"]
    assert stats["captures"] == 0 and stats["reason"].startswith("capture failed")
    assert "plain replay" in caplog.text


def test_reduce_overhead_graphs_a_compiled_modules_forward_and_backward_and_gradients_accumulate(cuda_backend):
    eager, model = twins(lambda: nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)))
    compiled = engine.compile(model, mode="reduce-overhead")
    opt_e, opt_c = (engine.optim.Adam(m.parameters(), lr=1e-2) for m in (eager, model))
    for i in range(6):
        x, y = engine.randn(5, 6, device="cuda"), engine.randn(5, 3, device="cuda")
        for opt, net in ((opt_e, eager), (opt_c, compiled)):
            if i % 2 == 0:
                opt.zero_grad()
            F.mse_loss(net(x), y).backward()  # two micro-batches per step: .grad must not alias graph memory
            if i % 2 == 1:
                opt.step()
    for a, b in zip(model.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(host(a), host(b), **tolerance(a.dtype))
    (entry,) = compiled._compiled_fn._entries()
    for program in (entry.runner.forward, entry.runner.backward):
        stats = program.info["cudagraph"]
        assert (stats["captures"], stats["replays"], stats["reason"]) == (1, 5, None)


def test_integer_and_boolean_kernels_follow_numpy_not_c(cuda_backend):
    """C's % and / truncate and its max drops NaN: the generated CUDA C keeps NumPy's (eager's) results."""

    def f(a, x):
        q, r = a // 3, a % 3
        mixed = engine.where(a > 0, a, -a) * 2 - (a.abs() < 4).long()
        return q, r, mixed, (q.float() / 4 + x).amax(dim=-1), engine.maximum(x, x * 0.0 + float("nan"))

    a = engine.arange(-12, 12, device="cuda").reshape(4, 6)
    x = engine.randn(4, 6, device="cuda")
    compiled = engine.compile(f)
    for _ in range(2):
        got, want = compiled(a, x), f(a, x)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype
            np.testing.assert_allclose(host(g), host(w), **tolerance(w.dtype))
    assert "ElementwiseKernel(" in "\n".join(compiled_graph(compiled).kernel_sources)


def test_the_device_is_guarded_a_cpu_call_and_a_cuda_call_compile_apart(cuda_backend):
    def f(x):
        return (x * 2.0).relu().sum(-1)

    compiled = engine.compile(f)
    x = engine.randn(3, 4)
    got_cpu, got_cuda = compiled(x), compiled(x.to("cuda"))
    assert got_cpu.device.type == "cpu" and got_cuda.device.type == "cuda"
    np.testing.assert_allclose(host(got_cuda), host(got_cpu), **tolerance(x.dtype))
    devices = sorted(getattr(e.runner, "__wrapped__", e.runner).info["device"] for e in compiled._entries())
    assert devices == ["cpu", "cuda:0"]


def test_float16_groups_compute_in_float_store_half_and_stay_within_half_rounding_of_eager(cuda_backend):
    def f(x, w):
        h = F.gelu(x @ w) * 0.5 + x.mean(-1, keepdim=True)
        return F.softmax(h, dim=-1), (h.float() * 3).half().amax(dim=0), h.tanh().sum(-1), (h > 0.1).float() * h

    compiled = engine.compile(f)
    with engine.no_grad():
        for _ in range(3):
            x, w = engine.randn(6, 8, device="cuda").half(), engine.randn(8, 8, device="cuda").half()
            got, want = compiled(x, w), f(x, w)
            for g, e in zip(got, want, strict=True):
                assert g.dtype == e.dtype
                np.testing.assert_allclose(host(g).astype(np.float64), host(e).astype(np.float64), rtol=1e-2,
                                           atol=1e-2)
    program = compiled_graph(compiled)
    assert not any(name.startswith(("engine.nn.functional", "Tensor.")) for name in program.info["fallbacks"])
    sources = "\n".join(program.kernel_sources)
    # half operands widened once, float locals, rounding only at stores
    assert "float16 in0" in sources and "((float)in0)" in sources and "float t0 = " in sources
    assert "((float16)(" in sources and "ReductionKernel(" in sources and "reduce_type='float'" in sources


_C_TYPES = {"float32": "float", "float64": "double", "int64": "long long", "int32": "int", "bool": "bool",
            "int8": "signed char", "uint8": "unsigned char", "float16": "float16"}
# NOTE: CuPy's float16 class (cupy/float16.cuh): stored as a half, converts from float implicitly and to float
_FLOAT16 = "struct float16 { unsigned short bits; float16(); float16(float); explicit float16(double); " \
           "explicit float16(int); explicit float16(bool); operator float() const; };"


def _c_params(spec: str, ref: bool, T: str) -> list[str]:
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        ctype, name = part.rsplit(" ", 1)
        out.append(f"{T if ctype == 'T' else _C_TYPES[ctype]}{' &' if ref else ''} {name}")
    return out


def test_the_generated_cuda_c_is_valid_cplusplus(cuda_backend, tmp_path):
    """Every kernel source the backend generated compiles as C++ (g++ -fsyntax-only with <cmath>'s overloads, as
    NVRTC has them for device code): what the fake's translator accepts, a real compiler accepts too."""
    import shutil
    import subprocess

    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("needs g++")
    for dtype in (engine.float32, engine.float64):  # generate the kernels of the cases above in both precisions
        previous = engine.get_default_dtype()
        engine.set_default_dtype(dtype)
        try:
            test_compiled_model_equals_eager_with_cuda_kernels(cuda_backend, dtype)
            test_a_training_step_compiles_on_cuda_and_equals_eager_without_host_copies(cuda_backend, dtype)
        finally:
            engine.set_default_dtype(previous)
    test_integer_and_boolean_kernels_follow_numpy_not_c(cuda_backend)
    test_float16_groups_compute_in_float_store_half_and_stay_within_half_rounding_of_eager(cuda_backend)
    lines = ["#include <cmath>", "using namespace std;", _FLOAT16]
    for n, (_, kind, source, options) in enumerate(k for k in cache._CUDA_LOADED if k[0] == id(cuda_backend)):
        if kind == "ElementwiseKernel":
            ins, outs, body, _ = source
            for T in ("float", "double"):  # the optimizer kernels are generic in T
                params = ", ".join(_c_params(ins, False, T) + _c_params(outs, True, T))
                lines.append(f"void k{n}_{T}({params}) {{ typedef {T} T; {body}; }}")
        else:
            ins, outs, mapped, reduce_expr, post_map, identity, _ = source
            rtype = dict(options)["reduce_type"]
            params = ", ".join(_c_params(ins, False, "T") + _c_params(outs, True, "T"))
            lines.append(f"void k{n}({params}) {{ typedef {rtype} T; T a = (T)({identity}); T b = (T)({mapped}); "
                         f"a = ({reduce_expr}); {post_map}; }}")
    assert len(lines) > 10
    path = tmp_path / "kernels.cpp"
    path.write_text("\n".join(lines) + "\n")
    result = subprocess.run([gxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wno-unused", str(path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[:4000]

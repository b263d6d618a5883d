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


def test_reduce_overhead_graphs_a_training_steps_forward_and_backward_between_its_host_effects(cuda_backend):
    eager, model = twins(lambda: nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)))
    opt_e, opt_c = (engine.optim.Adam(m.parameters(), lr=0.1) for m in (eager, model))

    def step(net, opt, x, y):
        opt.zero_grad()
        loss = F.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = engine.compile(step, mode="reduce-overhead")
    for i in range(4):
        x, y = engine.randn(4, 6, device="cuda"), engine.randn(4, 2, device="cuda")
        want = step(eager, opt_e, x, y)
        before = host_syncs(cuda_backend)
        got = compiled(model, opt_c, x, y)
        if before is not None and i >= 2:
            assert host_syncs(cuda_backend) == before, "the graphed step copied device data to the host"
        np.testing.assert_allclose(host(got), host(want), **tolerance(got.dtype))
    for a, b in zip(model.parameters(), eager.parameters(), strict=True):
        np.testing.assert_allclose(host(a), host(b), **tolerance(a.dtype))
    stats = compiled_graph(compiled).info["cudagraph"]
    # call 1 is the capture's own eager run, call 2 the warm-up, call 3 records, calls 3-4 launch; zero_grad, the
    # .grad delivery and the optimizer step stay host-side code around the one graph of forward and backward
    assert (stats["captures"], stats["replays"], stats["reason"]) == (1, 2, None)
    assert 0 < stats["steps"]["captured"] < stats["steps"]["of"]


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


_C_TYPES = {"float32": "float", "float64": "double", "int64": "long long", "int32": "int", "bool": "bool",
            "int8": "signed char", "uint8": "unsigned char"}


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
    lines = ["#include <cmath>", "using namespace std;"]
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

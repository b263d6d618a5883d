"""engine.compile on CPU against engine eager, PyTorch eager and torch.compile, measured in one run.

Run: `python tests/benchmarks/bench_compile.py [--repeats 7] [--cases mlp,cnn,gpt,chain1k,chain1m]`. Prints
ONE JSON object: per case the median milliseconds of each variant (interleaved rounds, a few calls
each, the order rotating so none always goes first) and the ratios the acceptance targets name:
- mlp: 784-1024-1024-10 ReLU, cross-entropy, Adam, batch 256 (compiled <= 1.0x torch.compile);
- cnn: conv(3->32)-ReLU-pool-conv(32->64)-ReLU-pool-linear(4096->10) on 3x32x32, SGD momentum 0.9,
  batch 128 (compiled <= 1.0x PyTorch eager, <= 1.0x torch.compile);
- gpt: d128, 2 layers, 4 heads, T=64, batch 16, AdamW (compiled <= 1.0x torch.compile, <= 0.8x engine eager);
- chain1k / chain1m: a 10-op elementwise chain, forward and backward, on 1k and 1M elements
  (compiled >= 5x faster than engine eager on 1k).

Each engine step is compiled with `engine.compile(step, backend="inductor")` (forward, backward and the
optimizer step in one captured program). torch.compile compiles the model (its forward and, through
AOTAutograd, its backward); its optimizer step runs eagerly, as `torch.compile(model)` users run it.
With `--forward-only` (or when `engine.compile` is missing) forward graphs are measured instead:
the engine side captures the forward and the loss and compiles it with `engine._inductor.compile_fx`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import torch

import engine

CALLS = {"mlp": 2, "cnn": 1, "gpt": 2, "chain1k": 200, "chain1m": 3}


def blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return int(pools[0]["num_threads"])
    except ImportError:
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ----- models, built alike in both libraries --------------------------------------------------------
def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def cnn(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


def gpt(lib, vocab=65, d=128, layers=2, T=64, heads=4):
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.register_buffer("mask", lib.tril(lib.ones(T, T)).view(1, 1, T, T))

        def forward(self, x):
            B, t, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q, k, v = (z.view(B, t, heads, C // heads).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // heads))
            att = F.softmax(att.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf")), dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, t, C)
            x = x + self.proj(y)
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(T, d)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

        def forward(self, idx):
            x = self.tok(idx) + self.pos(lib.arange(idx.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x)).view(-1, vocab)

    return GPT()


MODELS = {
    "mlp": (mlp, lambda rng: (rng.standard_normal((256, 784)).astype(np.float32), rng.integers(0, 10, 256)),
            lambda lib, p: lib.optim.Adam(p, lr=1e-3)),
    "cnn": (cnn, lambda rng: (rng.standard_normal((128, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 128)),
            lambda lib, p: lib.optim.SGD(p, lr=0.01, momentum=0.9)),
    "gpt": (gpt, lambda rng: (rng.integers(0, 65, (16, 64)), rng.integers(0, 65, 16 * 64)),
            lambda lib, p: lib.optim.AdamW(p, lr=1e-3)),
}


def chain(lib, x):
    """Ten elementwise ops."""
    a = x * 2.0 + 1.0
    b = lib.tanh(a) * lib.sigmoid(x)
    c = lib.exp(-b) - 1.5
    return lib.relu(c) / (x.abs() + 1.0)


# ----- variants -----------------------------------------------------------------------------------------
def model_variants(name: str, forward_only: bool) -> dict:
    make, data, make_opt = MODELS[name]
    torch.manual_seed(0)
    reference = {k: v.detach().numpy() for k, v in make(torch).state_dict().items()}
    x, y = data(np.random.default_rng(0))
    variants = {}
    for libname, lib in (("engine", engine), ("torch", torch)):
        variants.update(_library_variants(libname, lib, make, make_opt, reference, x, y, forward_only))
    return variants


def _library_variants(libname, lib, make, make_opt, reference, x, y, forward_only: bool) -> dict:
    """The eager and the compiled variant of one library, each with its own model and optimizer."""

    def new_model():
        model = make(lib)
        model.load_state_dict({k: lib.tensor(v) for k, v in reference.items()})
        return model

    inputs, targets = lib.tensor(x), lib.tensor(y)
    loss_fn = lib.nn.functional.cross_entropy
    eager, compiled_name = f"{libname}_eager", "engine_compiled" if libname == "engine" else "torch_compile"
    if forward_only:
        model = new_model()

        def forward():
            with lib.no_grad():
                return loss_fn(model(inputs), targets)

        if libname == "engine":
            compiled = _compiled_forward(lambda i, t: loss_fn(model(i), t), (inputs, targets))
        else:
            compiled_model = torch.compile(model)

            def compiled():
                with torch.no_grad():
                    return loss_fn(compiled_model(inputs), targets)

        return {eager: forward, compiled_name: compiled}

    def step_of(model, optimizer):
        def step(inputs, targets):
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            return loss

        return step

    eager_model = new_model()
    eager_step = step_of(eager_model, make_opt(lib, eager_model.parameters()))
    model = new_model()
    optimizer = make_opt(lib, model.parameters())
    if libname == "engine":
        compiled_step = engine.compile(step_of(model, optimizer), backend="inductor")
    else:
        compiled_step = step_of(torch.compile(model), optimizer)
    return {eager: lambda: eager_step(inputs, targets), compiled_name: lambda: compiled_step(inputs, targets)}


def _compiled_forward(fn, args):
    from engine._inductor import compile_fx
    from engine.fx import GraphModule
    from engine.fx.tracer import capture

    graph, state, constants, _ = capture(fn, args)
    compiled = compile_fx(GraphModule(state, graph, constants=constants), list(args))
    return lambda: compiled(*args)


def chain_variants(n: int, forward_only: bool) -> dict:
    data = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    variants = {}
    for libname, lib in (("engine", engine), ("torch", torch)):
        x = lib.tensor(data, requires_grad=not forward_only)
        if forward_only:
            def forward(x=x, lib=lib):
                with lib.no_grad():
                    return chain(lib, x)

            variants[f"{libname}_eager"] = forward
            if libname == "engine":
                variants["engine_compiled"] = _compiled_forward(lambda t: chain(engine, t), (x,))
            else:
                compiled = torch.compile(lambda t: chain(torch, t))

                def forward_compiled(x=x, compiled=compiled):
                    with torch.no_grad():
                        return compiled(x)

                variants["torch_compile"] = forward_compiled
            continue

        def fwd_bwd(x=x, lib=lib):
            x.grad = None
            chain(lib, x).sum().backward()
            return x.grad

        variants[f"{libname}_eager"] = fwd_bwd
        if libname == "engine":
            variants["engine_compiled"] = engine.compile(fwd_bwd, backend="inductor")
        else:
            compiled = torch.compile(lambda t: chain(torch, t).sum())

            def torch_compiled(x=x, compiled=compiled):
                x.grad = None
                compiled(x).backward()
                return x.grad

            variants["torch_compile"] = torch_compiled
    return variants


def measure(variants: dict, calls: int, repeats: int) -> dict:
    for fn in variants.values():  # warm up: captures, numba and inductor compiles, first allocations
        for _ in range(3):
            fn()
    samples: dict = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn = variants[name]
            started = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - started) / calls * 1e3)
    return {k: statistics.median(v) for k, v in samples.items()}


def ratios(name: str, ms: dict) -> dict:
    c = ms["engine_compiled"]
    out = {"compiled_vs_torch_eager": c / ms["torch_eager"], "compiled_vs_torch_compile": c / ms["torch_compile"],
           "compiled_vs_engine_eager": c / ms["engine_eager"], "engine_eager_speedup": ms["engine_eager"] / c}
    return {k: round(v, 3) for k, v in out.items()}


TARGETS = {
    "mlp": {"compiled_vs_torch_compile": ("<=", 1.0)},
    "cnn": {"compiled_vs_torch_eager": ("<=", 1.0), "compiled_vs_torch_compile": ("<=", 1.0)},
    "gpt": {"compiled_vs_torch_compile": ("<=", 1.0), "compiled_vs_engine_eager": ("<=", 0.8)},
    "chain1k": {"engine_eager_speedup": (">=", 5.0)},
    "chain1m": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per case")
    parser.add_argument("--cases", default="mlp,cnn,gpt,chain1k,chain1m")
    parser.add_argument("--forward-only", action="store_true", help="measure forward graphs only")
    args = parser.parse_args()
    threads = blas_threads()
    torch.set_num_threads(threads)
    has_compile = hasattr(engine, "compile") and (Path(engine.__file__).parent / "_dynamo").is_dir()
    forward_only = args.forward_only or not has_compile
    from engine import _inductor

    result: dict = {
        "benchmark": "compile", "unit": "ms per call (median of interleaved rounds)", "repeats": args.repeats,
        "measures": "forward graphs (engine._inductor.compile_fx on a captured forward + loss)" if forward_only
        else "training steps through engine.compile(step, backend='inductor'); torch.compile(model), eager optimizer",
        "numba": _inductor.has_numba(), "threads": {"numpy_blas": threads, "torch": torch.get_num_threads()},
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__},
        "load_average_before": [round(v, 2) for v in os.getloadavg()], "cases": {},
    }
    for name in args.cases.split(","):
        started = time.perf_counter()
        try:
            variants = chain_variants(1000 if name == "chain1k" else 1_000_000, forward_only) \
                if name.startswith("chain") else model_variants(name, forward_only)
            ms = measure(variants, CALLS[name], args.repeats)
        except Exception as exc:  # one failing case is reported, the others still run
            result["cases"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        r = ratios(name, ms)
        targets = {k: {"target": f"{op} {v}", "met": r[k] <= v if op == "<=" else r[k] >= v}
                   for k, (op, v) in TARGETS[name].items()}
        result["cases"][name] = {"ms": {k: round(v, 4) for k, v in ms.items()}, "ratios": r, "targets": targets,
                                 "seconds": round(time.perf_counter() - started, 1)}
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()

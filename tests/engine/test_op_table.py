"""One sweep over the op table: forward values and every input's gradient against PyTorch, on
contiguous and non-contiguous inputs, plus a float64 gradcheck (and gradgradcheck) per op."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from op_table import OPS, Case
from torch_oracle import require_torch

import engine

torch = require_torch()


def _draw(case: Case, seed_offset: int = 0) -> list:
    rng = np.random.default_rng(zlib.crc32(case.name.encode()) + seed_offset)
    arrays = []
    for arg in case.inputs:
        shape = arg.shape
        if arg.kind == "normal":
            arrays.append(rng.standard_normal(shape))
        elif arg.kind == "positive":
            arrays.append(rng.uniform(0.5, 2.0, shape))
        elif arg.kind == "unit":
            arrays.append(rng.uniform(-0.9, 0.9, shape))
        elif arg.kind == "small":
            arrays.append(rng.uniform(-0.5, 0.5, shape))
        elif arg.kind == "index":
            arrays.append(rng.integers(0, arg.high, shape))
        elif arg.kind == "perm":
            moved = list(shape)
            moved[arg.dim], moved[-1] = moved[-1], moved[arg.dim]
            rows = [rng.permutation(arg.high)[: moved[-1]] for _ in range(int(np.prod(moved[:-1])))]
            arrays.append(np.swapaxes(np.array(rows).reshape(moved), arg.dim, -1))
        elif arg.kind == "bool":
            arrays.append(rng.random(shape) > 0.5)
        else:
            raise ValueError(arg.kind)
    return arrays


def _build(lib, case: Case, arrays: list, dtype_name: str, noncontiguous: bool):
    """Tensors for ``lib`` (leaves, and the possibly non-contiguous views passed to the op)."""
    inputs, leaves = [], []
    for arg, array in zip(case.inputs, arrays, strict=True):
        if not arg.is_float:
            dtype = lib.int64 if arg.kind in ("index", "perm") else lib.bool
            inputs.append(lib.tensor(array, dtype=dtype))
            leaves.append(None)
            continue
        dtype = getattr(lib, dtype_name)
        if noncontiguous and array.ndim >= 2:
            leaf = lib.tensor(np.swapaxes(array, -1, -2).copy(), dtype=dtype, requires_grad=True)
            view = leaf.transpose(-1, -2)
        elif noncontiguous and array.ndim == 1:
            spaced = np.zeros(2 * array.shape[0])
            spaced[::2] = array
            leaf = lib.tensor(spaced, dtype=dtype, requires_grad=True)
            view = leaf[::2]
        else:
            leaf = lib.tensor(array, dtype=dtype, requires_grad=True)
            view = leaf
        if not case.differentiable:
            leaf.requires_grad_(False)
        inputs.append(view)
        leaves.append(leaf)
    return inputs, leaves


def _run(lib, case: Case, inputs) -> tuple:
    fn = case.torch_fn if (lib is torch and case.torch_fn is not None) else case.fn
    out = fn(lib, *inputs)
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def _assert_same(engine_out, torch_out, case: Case, what: str) -> None:
    assert str(engine_out.dtype).split(".")[-1] == str(torch_out.dtype).split(".")[-1], \
        f"{what}: dtype {engine_out.dtype} != torch {torch_out.dtype}"
    assert tuple(engine_out.shape) == tuple(torch_out.shape), \
        f"{what}: shape {tuple(engine_out.shape)} != torch {tuple(torch_out.shape)}"
    np.testing.assert_allclose(_numpy(engine_out), _numpy(torch_out), rtol=case.rtol, atol=case.atol,
                               err_msg=what)


def _layouts():
    for case in OPS:
        yield pytest.param(case, False, id=f"{case.name}-contiguous")
        if case.noncontiguous and any(arg.is_float and len(arg.shape) >= 1 for arg in case.inputs):
            yield pytest.param(case, True, id=f"{case.name}-noncontiguous")


@pytest.mark.parametrize(("case", "noncontiguous"), list(_layouts()))
def test_op_forward_and_gradients_match_torch(case: Case, noncontiguous: bool) -> None:
    arrays = _draw(case)
    engine_inputs, engine_leaves = _build(engine, case, arrays, "float32", noncontiguous)
    torch_inputs, torch_leaves = _build(torch, case, arrays, "float32", noncontiguous)
    engine_outs = _run(engine, case, engine_inputs)
    torch_outs = _run(torch, case, torch_inputs)
    assert len(engine_outs) == len(torch_outs)
    for k, (e, t) in enumerate(zip(engine_outs, torch_outs, strict=True)):
        _assert_same(e, t, case, f"{case.name} output {k}")
    if not case.differentiable:
        return
    pairs = [(e, t) for e, t in zip(engine_outs, torch_outs, strict=True) if t.requires_grad]
    assert all(e.requires_grad for e, _ in pairs), "engine output lost requires_grad"
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(tuple(t.shape)) for _, t in pairs]
    torch.autograd.backward([t for _, t in pairs], [torch.tensor(g, dtype=t.dtype) for g, (_, t) in
                                                    zip(grads, pairs, strict=True)])
    engine.autograd.backward([e for e, _ in pairs], [engine.tensor(g, dtype=e.dtype) for g, (e, _) in
                                                     zip(grads, pairs, strict=True)])
    for i, (e_leaf, t_leaf) in enumerate(zip(engine_leaves, torch_leaves, strict=True)):
        if t_leaf is None:
            continue
        if t_leaf.grad is None:
            assert e_leaf.grad is None or not _numpy(e_leaf.grad).any(), f"input {i} should get no gradient"
            continue
        assert e_leaf.grad is not None, f"{case.name}: input {i} got no gradient"
        _assert_same(e_leaf.grad, t_leaf.grad, Case(case.name, case.fn, (), rtol=max(case.rtol, 1e-4),
                                                    atol=max(case.atol, 1e-5)), f"{case.name} grad of input {i}")


@pytest.mark.parametrize("case", [c for c in OPS if c.differentiable], ids=lambda c: c.name)
def test_op_gradcheck_float64(case: Case) -> None:
    inputs, _ = _build(engine, case, _draw(case, seed_offset=7), "float64", noncontiguous=False)

    def fn(*xs):
        return case.fn(engine, *xs)

    assert engine.autograd.gradcheck(fn, inputs)
    if case.gradgrad:
        assert engine.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("case", [c for c in OPS if c.name not in ("softmax_large_logits", "log_softmax_large_logits")],
                         ids=lambda c: c.name)
def test_op_keeps_dtype_like_torch_in_other_float_types(case: Case, dtype_name: str) -> None:
    arrays = _draw(case)
    if "no_half" in case.tags and dtype_name != "float64":  # torch refuses these dtypes: so must the engine
        for lib in (torch, engine):
            with pytest.raises(RuntimeError):
                _run(lib, case, _build(lib, case, arrays, dtype_name, False)[0])
        return
    engine_outs = _run(engine, case, _build(engine, case, arrays, dtype_name, False)[0])
    torch_outs = _run(torch, case, _build(torch, case, arrays, dtype_name, False)[0])
    loose = {"float16": 1e-2, "bfloat16": 5e-2, "float64": 1e-5}[dtype_name]
    for k, (e, t) in enumerate(zip(engine_outs, torch_outs, strict=True)):
        assert str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"output {k} dtype"
        if t.dtype.is_floating_point:
            np.testing.assert_allclose(_numpy(e.float()), _numpy(t.float()), rtol=loose, atol=loose)
        elif case.name not in ("argmax", "argmax_dim", "argmin_dim", "argsort") or dtype_name == "float64":
            np.testing.assert_array_equal(_numpy(e), _numpy(t))


@pytest.mark.parametrize("case", OPS, ids=lambda c: c.name)
def test_op_forward_without_graph_matches_torch(case: Case) -> None:
    """The graph-free fast paths (inputs not requiring grad, or no_grad) give the same values."""
    arrays = _draw(case)
    torch_outs = _run(torch, case, _build(torch, case, arrays, "float32", False)[0])
    plain_inputs = [t.detach() for t in _build(engine, case, arrays, "float32", False)[0]]
    with engine.no_grad():
        in_no_grad = _run(engine, case, _build(engine, case, arrays, "float32", False)[0])
    for outs in (_run(engine, case, plain_inputs), in_no_grad):
        for k, (e, t) in enumerate(zip(outs, torch_outs, strict=True)):
            assert e.grad_fn is None
            _assert_same(e, t, case, f"{case.name} output {k}")

"""Tensor basics: dtypes and promotion, devices, repr, conversions, creation and seeding."""

from __future__ import annotations

import copy
import itertools
import pickle

import numpy as np
import pytest
from torch_oracle import require_torch

import engine

torch = require_torch()

DTYPE_NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _sample(lib, name: str, zero_dim: bool):
    dtype = getattr(lib, name)
    values = 1 if zero_dim else [1, 0]
    return lib.tensor(values, dtype=dtype)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_every_dtype_is_exposed_and_round_trips(name):
    dtype = getattr(engine, name)
    t = engine.zeros(2, dtype=dtype)
    assert t.dtype is dtype
    assert repr(dtype) == f"engine.{name}"
    assert t.element_size() == getattr(torch, name).itemsize
    assert dtype.is_floating_point == getattr(torch, name).is_floating_point


@pytest.mark.parametrize(("left", "right"), list(itertools.product(DTYPE_NAMES, repeat=2)))
def test_tensor_promotion_matches_torch_result_type(left, right):
    for left_0d, right_0d in itertools.product((False, True), repeat=2):
        expected = torch.result_type(_sample(torch, left, left_0d), _sample(torch, right, right_0d))
        got = engine.result_type(_sample(engine, left, left_0d), _sample(engine, right, right_0d))
        assert got.name == str(expected).split(".")[-1], (left, left_0d, right, right_0d)


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_python_scalars_promote_like_torch(name, scalar):
    expected = torch.result_type(_sample(torch, name, False), scalar)
    assert engine.result_type(_sample(engine, name, False), scalar).name == str(expected).split(".")[-1]
    if name != "bool" or not isinstance(scalar, bool):
        out = _sample(engine, name, False) * scalar
        assert out.dtype.name == str((_sample(torch, name, False) * scalar).dtype).split(".")[-1]


def test_integer_tensor_with_float_scalar_gives_default_float():
    assert (engine.tensor([1, 2]) * 2.5).dtype is engine.float32
    assert (engine.tensor([1, 2]) / engine.tensor([2, 2])).dtype is engine.float32
    assert (engine.tensor([1.0], dtype=engine.float16) + 1e3).dtype is engine.float16
    assert (engine.tensor([1, 2]) + engine.tensor(2.5, dtype=engine.float64)).dtype is engine.float64


def test_default_dtype_can_be_changed():
    engine.set_default_dtype(engine.float64)
    try:
        assert engine.tensor([1.0]).dtype is engine.float64
        assert engine.zeros(2).dtype is engine.float64
    finally:
        engine.set_default_dtype(engine.float32)
    assert engine.tensor([1.0]).dtype is engine.float32


def test_tensor_infers_dtype_like_torch():
    assert engine.tensor([1.0, 2]).dtype is engine.float32
    assert engine.tensor([1, 2]).dtype is engine.int64
    assert engine.tensor([True]).dtype is engine.bool
    assert engine.tensor(np.zeros(2, dtype=np.float64)).dtype is engine.float64
    assert engine.tensor(3.5).shape == ()


def test_devices_parse_and_compare():
    assert engine.device("cpu") is engine.device("cpu")
    cuda1 = engine.device("cuda:1")
    assert (cuda1.type, cuda1.index) == ("cuda", 1)
    assert engine.device("cuda", 1) is cuda1
    assert str(cuda1) == "cuda:1"
    assert engine.zeros(1).device == engine.device("cpu")
    with pytest.raises(RuntimeError, match="device type"):
        engine.device("tpu")


@pytest.mark.skipif(engine.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_cuda_without_a_gpu_reports_unavailable_and_raises_clearly():
    assert engine.cuda.device_count() == 0
    with pytest.raises(AssertionError, match="CUDA is not available"):  # as a CPU-only torch build
        engine.cuda.synchronize()
    engine.cuda.manual_seed(1)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        engine.zeros(2).cuda()


def test_cpu_is_a_no_op_on_cpu_tensors():
    t = engine.ones(2)
    assert t.cpu() is t
    assert t.to("cpu") is t


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
    lambda lib: lib.tensor([1.5, -2.25, 3.0]),
    lambda lib: lib.tensor(3.5),
    lambda lib: lib.tensor([1, 2, 300]),
    lambda lib: lib.tensor([True, False]),
    lambda lib: lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64),
    lambda lib: lib.tensor([1e-5, 1.0, 1e5]),
    lambda lib: lib.tensor([0.1, 0.25]) * lib.tensor([2.0, 2.0], requires_grad=True),
    lambda lib: lib.zeros(0, 3),
    lambda lib: lib.tensor([1, 2], dtype=lib.int32),
    lambda lib: lib.arange(2000.0),
    lambda lib: lib.arange(24.0).reshape(2, 3, 4),
])
def test_repr_matches_torch(make):
    assert repr(make(engine)) == repr(make(torch)).replace("torch.", "engine.")


def test_numpy_shares_memory_and_from_numpy_shares_back():
    array = np.arange(3.0)
    t = engine.from_numpy(array)
    array[0] = 10
    assert t[0].item() == 10
    t.numpy()[1] = 20
    assert array[1] == 20
    with pytest.raises(RuntimeError, match="requires grad"):
        engine.ones(1, requires_grad=True).numpy()


def test_scalar_conversions():
    t = engine.tensor([[2.5]])
    assert t.item() == 2.5 and float(t) == 2.5 and int(t) == 2 and bool(t)
    assert engine.tensor([1, 2]).tolist() == [1, 2]
    assert engine.tensor([0.1]).tolist() == torch.tensor([0.1]).tolist()
    assert f"{engine.tensor(0.12345):.2f}" == "0.12"
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        engine.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(engine.ones(2))


def test_shape_accessors():
    t = engine.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == engine.Size([2, 3, 4])
    assert t.size(-1) == 4 and t.dim() == 3 and t.ndim == 3 and t.numel() == 24
    assert t.shape.numel() == 24 and len(t) == 2
    assert [row.shape for row in t] == [(3, 4), (3, 4)]


def test_dtype_conversions():
    t = engine.tensor([1.7, -2.2])
    assert t.int().tolist() == [1, -2]
    assert t.double().dtype is engine.float64
    assert t.to(engine.float16).dtype is engine.float16
    assert t.half().float().dtype is engine.float32
    assert t.to(torch_like := engine.zeros(1, dtype=engine.int64)).dtype is engine.int64
    assert torch_like.dtype is engine.int64
    assert t.bfloat16().tolist() == torch.tensor([1.7, -2.2]).bfloat16().tolist()


def test_pickle_and_deepcopy_keep_values_and_requires_grad():
    t = engine.tensor([1.0, 2.0], requires_grad=True)
    for clone in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):  # noqa: S301 - our own bytes
        assert clone.tolist() == [1.0, 2.0] and clone.requires_grad
        assert clone is not t


@pytest.mark.parametrize(("name", "call"), [
    ("zeros", lambda lib: lib.zeros(2, 3)),
    ("zeros_tuple", lambda lib: lib.zeros((2, 3), dtype=lib.int32)),
    ("ones", lambda lib: lib.ones([4])),
    ("full", lambda lib: lib.full((2, 2), 7)),
    ("full_float", lambda lib: lib.full((2,), 1.5)),
    ("full_bool", lambda lib: lib.full((2,), True)),
    ("empty_shape", lambda lib: lib.empty(3, 0).shape),
    ("zeros_like", lambda lib: lib.zeros_like(lib.ones(2, dtype=lib.float64))),
    ("ones_like_dtype", lambda lib: lib.ones_like(lib.ones(2), dtype=lib.int8)),
    ("full_like", lambda lib: lib.full_like(lib.ones(3), 4.0)),
    ("arange_int", lambda lib: lib.arange(5)),
    ("arange_float_step", lambda lib: lib.arange(0, 1, 0.1)),
    ("arange_negative_step", lambda lib: lib.arange(5, -3, -2)),
    ("linspace", lambda lib: lib.linspace(-1, 1, 7)),
    ("logspace", lambda lib: lib.logspace(0, 2, 3)),
    ("eye", lambda lib: lib.eye(3)),
    ("eye_rect", lambda lib: lib.eye(2, 4, dtype=lib.int64)),
    ("scalar_tensor", lambda lib: lib.scalar_tensor(3)),
])
def test_creation_functions_match_torch(name, call):
    got, expected = call(engine), call(torch)
    if isinstance(expected, tuple):
        assert tuple(got) == tuple(expected)
        return
    assert got.dtype.name == str(expected.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-7)


def test_as_tensor_reuses_memory_when_it_can():
    array = np.ones(3, dtype=np.float32)
    assert engine.as_tensor(array).numpy() is array
    t = engine.ones(2)
    assert engine.as_tensor(t) is t
    assert engine.as_tensor([1, 2], dtype=engine.float64).dtype is engine.float64


def test_manual_seed_makes_random_factories_reproducible():
    draws = []
    for _ in range(2):
        engine.manual_seed(42)
        draws.append([engine.rand(3), engine.randn(2, 2), engine.randint(0, 10, (4,)), engine.randperm(5),
                      engine.normal(0.0, 2.0, (3,)), engine.bernoulli(engine.full((4,), 0.5)),
                      engine.multinomial(engine.tensor([0.2, 0.3, 0.5]), 2)])
    for a, b in zip(*draws, strict=True):
        assert engine.equal(a, b)


def test_generator_state_round_trips():
    g = engine.Generator().manual_seed(7)
    engine.rand(4, generator=g)
    state = g.get_state()
    first = engine.randn(5, generator=g)
    g.set_state(state)
    assert engine.equal(engine.randn(5, generator=g), first)
    assert g.initial_seed() == 7
    engine.manual_seed(3)
    saved = engine.get_rng_state()
    x = engine.rand(2)
    engine.set_rng_state(saved)
    assert engine.equal(engine.rand(2), x)


def test_generator_is_independent_of_the_default_stream():
    engine.manual_seed(0)
    expected = engine.rand(3)
    engine.manual_seed(0)
    engine.rand(3, generator=engine.Generator().manual_seed(99))
    assert engine.equal(engine.rand(3), expected)


def test_random_factories_have_the_right_ranges_and_dtypes():
    u = engine.rand(10_000)
    assert u.dtype is engine.float32 and 0 <= u.min().item() and u.max().item() < 1
    n = engine.randn(20_000, dtype=engine.float64)
    assert abs(n.mean().item()) < 0.05 and abs(n.std().item() - 1) < 0.05
    r = engine.randint(3, 7, (1000,))
    assert r.dtype is engine.int64 and set(r.tolist()) == {3, 4, 5, 6}
    assert sorted(engine.randperm(10).tolist()) == list(range(10))
    m = engine.normal(engine.tensor([0.0, 100.0]), engine.tensor([1.0, 0.0]))
    assert m[1].item() == 100.0
    b = engine.bernoulli(engine.tensor([0.0, 1.0, 0.0]))
    assert b.tolist() == [0.0, 1.0, 0.0]
    assert engine.ones(3).uniform_(2, 3).min().item() >= 2
    assert engine.zeros(100).normal_(5, 0.1).mean().item() == pytest.approx(5, abs=0.1)


def test_multinomial_without_replacement_never_repeats_and_respects_zero_weights():
    weights = engine.tensor([[0.0, 1.0, 1.0, 1.0], [5.0, 0.0, 1.0, 0.0]])
    picks = engine.multinomial(weights[:1], 3)
    assert sorted(picks[0].tolist()) == [1, 2, 3]
    with_replacement = engine.multinomial(weights, 50, replacement=True)
    assert with_replacement.shape == (2, 50)
    assert set(with_replacement[1].tolist()) <= {0, 2}
    with pytest.raises(RuntimeError, match="without replacement"):
        engine.multinomial(engine.tensor([1.0, 1.0]), 3)


def test_mixing_devices_is_rejected_with_a_clear_message(monkeypatch):
    a = engine.ones(2)
    b = engine.ones(2)
    b._device = engine.device("cuda:0")  # a stand-in: no array is touched before the check
    with pytest.raises(RuntimeError, match="same device"):
        a + b

"""Complex tensors against torch: dtypes, promotion, views, ops, PyTorch's gradient convention, errors, saving."""

from __future__ import annotations

import io

import numpy as np
import pytest

import engine


def _np(t):
    t = t.detach()
    return t.resolve_conj().numpy() if hasattr(t, "resolve_conj") else t.numpy()


def test_dtypes_and_aliases(torch):
    assert engine.cfloat is engine.complex64 and engine.cdouble is engine.complex128
    assert engine.complex64.is_complex and not engine.complex64.is_floating_point
    assert engine.complex64.to_real() is engine.float32 and engine.float64.to_complex() is engine.complex128
    z = engine.zeros(2, dtype=engine.cfloat)
    assert z.is_complex() and engine.is_complex(z) and not engine.is_complex(engine.zeros(2))
    assert z.element_size() == 8 and engine.finfo(engine.complex128).eps == torch.finfo(torch.complex128).eps
    assert engine.tensor([1 + 2j]).dtype is engine.complex64
    assert engine.tensor(np.array([1j])).dtype is engine.complex128
    assert engine.tensor(1j).item() == 1j


DTYPES = ["bool", "int32", "int64", "float16", "bfloat16", "float32", "float64", "complex64", "complex128"]


def test_promote_types_matches_torch(torch):
    for a in DTYPES:
        for b in DTYPES:
            ours = engine.promote_types(getattr(engine, a), getattr(engine, b))
            assert ours.name == str(torch.promote_types(getattr(torch, a), getattr(torch, b))).split(".")[1], (a, b)


@pytest.mark.parametrize("dtype", ["bool", "int64", "float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("other", [1j, 2.5, 3, "zero_dim_complex128", "zero_dim_complex64", "complex64"])
def test_result_type_with_scalars_and_tensors_matches_torch(torch, dtype, other):
    def operand(mod):
        if other == "complex64":
            return mod.ones(3, dtype=mod.complex64)
        if isinstance(other, str):
            return mod.tensor(1 + 1j, dtype=getattr(mod, other.removeprefix("zero_dim_")))
        return other

    ours = engine.ones(3, dtype=getattr(engine, dtype)) + operand(engine)
    theirs = torch.ones(3, dtype=getattr(torch, dtype)) + operand(torch)
    assert ours.dtype.name == str(theirs.dtype).split(".")[1]
    np.testing.assert_allclose(_np(ours), _np(theirs))


def test_repr_matches_torch(torch):
    values = [[1.5 + 2j, -3 - 0.25j], [0j, 4 - 1j]]
    assert repr(engine.tensor(values)).replace("engine.", "") == repr(torch.tensor(values)).replace("torch.", "")
    assert "complex128" in repr(engine.tensor(values, dtype=engine.complex128))


def test_randn_complex_has_unit_variance(torch):
    z = engine.randn(200, 100, dtype=engine.cfloat)
    assert z.dtype is engine.complex64 and tuple(z.shape) == (200, 100)
    assert abs((z.abs() ** 2).mean().item() - 1.0) < 0.05
    assert abs(z.real.std().item() - 0.5 ** 0.5) < 0.02 and abs(z.imag.std().item() - 0.5 ** 0.5) < 0.02
    with pytest.raises(RuntimeError, match="expected a floating point dtype"):
        engine.rand(2, dtype=engine.cfloat)


def test_real_and_imag_are_views():
    z = engine.tensor([1 + 2j, 3 + 4j])
    z.real.mul_(10)
    z.imag[1] = -1
    np.testing.assert_array_equal(z.numpy(), [10 + 2j, 30 - 1j])
    x = engine.tensor([1.0, 2.0])
    assert x.real is x
    with pytest.raises(RuntimeError, match="imag is not implemented for tensors with non-complex dtypes"):
        x.imag  # noqa: B018


def test_view_as_real_and_complex_share_memory(torch):
    z = engine.tensor([[1 + 2j, 3 + 4j]], dtype=engine.complex128)
    pairs = engine.view_as_real(z)
    assert tuple(pairs.shape) == (1, 2, 2) and pairs.dtype is engine.float64
    pairs[0, 1, 0] = 7.0
    assert z[0, 1].item() == 7 + 4j
    back = engine.view_as_complex(pairs)
    back[0, 0] = 5j
    assert pairs[0, 0].tolist() == [0.0, 5.0]
    with pytest.raises(RuntimeError, match="last dimension of size 2"):
        engine.view_as_complex(engine.zeros(3, 3))
    with pytest.raises(RuntimeError, match="last dimension with stride 1"):
        engine.view_as_complex(engine.zeros(2, 4)[:, ::2])
    with pytest.raises(RuntimeError, match="only supported for float and double"):
        engine.view_as_complex(engine.zeros(3, 2, dtype=engine.int64))
    with pytest.raises(RuntimeError, match="only supported for complex tensors"):
        engine.view_as_real(engine.zeros(3))


def test_elementwise_and_matmul_values_match_torch(torch):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2)) + 1j * rng.standard_normal((4, 2))
    ea, eb, ta, tb = engine.tensor(a), engine.tensor(b), torch.tensor(a), torch.tensor(b)
    for ours, theirs in [(ea + 1, ta + 1), (ea - 2j, ta - 2j), (ea * ea, ta * ta), (ea / (ea + 3), ta / (ta + 3)),
                         (ea @ eb, ta @ tb), (ea.abs(), ta.abs()), (ea.angle(), ta.angle()), (ea.exp(), ta.exp()),
                         (ea.conj(), ta.conj()), (engine.conj_physical(ea), torch.conj_physical(ta)),
                         (ea.mH, ta.mH), (ea.sum(0), ta.sum(0)), (ea.mean(), ta.mean()), (ea.sgn(), ta.sgn()),
                         (engine.angle(engine.tensor([-1.0, 0.0, 2.0])), torch.angle(torch.tensor([-1.0, 0.0, 2.0]))),
                         (engine.polar(engine.tensor([2.0]), engine.tensor([0.5])),
                          torch.polar(torch.tensor([2.0]), torch.tensor([0.5])))]:
        assert ours.dtype.name == str(theirs.dtype).split(".")[1]
        np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-6, atol=1e-12)
    assert not ea.conj().is_conj() and engine.resolve_conj(ea) is ea


# Each loss is real; the gradients of both real leaves (the parts of c) follow from PyTorch's convention.
LOSSES = {
    "abs": lambda m, a, b, c: c.abs().sum(),
    "mul": lambda m, a, b, c: (c * c).real.sum(),
    "div": lambda m, a, b, c: (c / (c * c + 1)).imag.sum(),
    "exp": lambda m, a, b, c: c.exp().imag.sum(),
    "matmul": lambda m, a, b, c: (c @ c.mH).real.sum() + (c.mT @ c).abs().sum(),
    "polar": lambda m, a, b, c: (m.polar(a.abs() + 1, b) * c).imag.sum(),
    "angle": lambda m, a, b, c: (c.angle() * a).sum(),
    "view_as_real": lambda m, a, b, c: (m.view_as_real(c * c) ** 2).sum(),
    "view_as_complex": lambda m, a, b, c: (m.view_as_complex(m.stack([a, b], -1)) * c).abs().sum(),
    "conj": lambda m, a, b, c: (c.conj() * c * 1j + c.conj_physical()).real.sum(),
    "mixed_real_complex": lambda m, a, b, c: (a * c * 2j + a / c - 0.5j * b).abs().sum(),
    "sgn": lambda m, a, b, c: (c.sgn() * a).real.sum(),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_follow_torchs_convention(torch, name):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    results = []
    for mod in (engine, torch):
        a, b = mod.tensor(x, requires_grad=True), mod.tensor(y, requires_grad=True)
        loss = LOSSES[name](mod, a, b, mod.complex(a, b))
        loss.backward()
        results.append((loss.item(), a.grad.numpy(), None if b.grad is None else b.grad.numpy()))
    (loss_e, ga_e, gb_e), (loss_t, ga_t, gb_t) = results
    np.testing.assert_allclose(loss_e, loss_t, rtol=1e-10)
    np.testing.assert_allclose(ga_e, ga_t, rtol=1e-8, atol=1e-12)
    assert (gb_e is None) == (gb_t is None)
    if gb_t is not None:
        np.testing.assert_allclose(gb_e, gb_t, rtol=1e-8, atol=1e-12)


def test_complex_leaf_gradient_matches_torch(torch):
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4,)) + 1j * rng.standard_normal((4,))
    grads = []
    for mod in (engine, torch):
        leaf = mod.tensor(z, requires_grad=True)
        w = mod.tensor(z[::-1].copy())
        ((leaf * w).abs() ** 2 + (leaf / w).real).sum().backward()
        assert leaf.grad.dtype == leaf.dtype
        grads.append(_np(leaf.grad))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)


# Functions of complex z (and w): their gradients for a complex cotangent follow PyTorch's convention,
# g * conj(f'(z)) for holomorphic f. Inputs keep a positive real part, away from log's and sqrt's branch cut.
HOLOMORPHIC = {name: (lambda m, z, w, _n=name: getattr(m, _n)(z)) for name in (
    "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "atan", "sinh", "cosh",
    "tanh", "sigmoid", "reciprocal", "abs", "angle", "sgn")}
HOLOMORPHIC.update({
    "pow_scalar": lambda m, z, w: z ** 3 + z ** 0.5,
    "pow_complex_scalar": lambda m, z, w: z ** (1.5 - 0.5j),
    "pow_zero": lambda m, z, w: z ** 0,
    "pow_tensor": lambda m, z, w: z ** w,
    "rpow_scalar": lambda m, z, w: 2 ** z + (1 + 1j) ** w,
    "div": lambda m, z, w: z / w + 1 / z,
    "mul_conj": lambda m, z, w: z * w.conj(),
})


def _complex_sample(rng, shape, dtype):
    return (rng.uniform(0.5, 1.5, shape) + 1j * rng.uniform(-1, 1, shape)).astype(dtype)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("name", sorted(HOLOMORPHIC))
def test_complex_gradients_of_elementwise_ops_match_torch(torch, name, dtype):
    rng = np.random.default_rng(4)
    z, w, v = (_complex_sample(rng, (2, 3), dtype) for _ in range(3))
    results = []
    for mod in (engine, torch):
        tz, tw = mod.tensor(z, requires_grad=True), mod.tensor(w, requires_grad=True)
        out = HOLOMORPHIC[name](mod, tz, tw)
        seed = mod.tensor(v if out.dtype.is_complex else v.real.copy())
        grads = mod.autograd.grad(out, (tz, tw), seed, allow_unused=True)
        results.append((_np(out), [None if g is None else _np(g) for g in grads]))
    (out_e, grads_e), (out_t, grads_t) = results
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "complex64" else {"rtol": 1e-10, "atol": 1e-12}
    assert out_e.dtype == out_t.dtype
    np.testing.assert_allclose(out_e, out_t, **tol)
    for ours, theirs in zip(grads_e, grads_t, strict=True):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            assert ours.dtype == theirs.dtype
            np.testing.assert_allclose(ours, theirs, **tol)


@pytest.mark.parametrize("name", sorted(HOLOMORPHIC))
def test_complex_gradients_pass_gradcheck(name):
    rng = np.random.default_rng(5)
    z, w = (engine.tensor(_complex_sample(rng, (3,), "complex128"), requires_grad=True) for _ in range(2))
    assert engine.autograd.gradcheck(lambda z, w: HOLOMORPHIC[name](engine, z, w), (z, w), eps=1e-6, atol=1e-7)


def test_complex_gradcheck_catches_a_missing_conjugate():
    class SquareWithoutConj(engine.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z * z

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g * 2 * z  # PyTorch's convention needs conj(2 z)

    z = engine.tensor([0.5 + 1j, 1 - 0.5j], dtype=engine.complex128, requires_grad=True)
    assert not engine.autograd.gradcheck(SquareWithoutConj.apply, (z,), raise_exception=False)
    assert engine.autograd.gradcheck(lambda z: z * z, (z,))


def test_complex_second_derivatives_match_torch(torch):
    rng = np.random.default_rng(6)
    z = _complex_sample(rng, (4,), "complex128")
    results = []
    for mod in (engine, torch):
        tz = mod.tensor(z, requires_grad=True)
        (g,) = mod.autograd.grad((tz.sin() * tz.log() + tz.sqrt() ** 3).abs().sum(), tz, create_graph=True)
        (g.abs() ** 2).sum().backward()
        results.append((_np(g), _np(tz.grad)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "NAdam"])
def test_optimizers_update_complex_parameters_like_torch(torch, name):
    start = np.array([1 + 2j, -0.5 + 0.1j, 0.3 - 1j], dtype=np.complex64)
    results = []
    for mod in (engine, torch):
        w = mod.nn.Parameter(mod.tensor(start))
        opt = getattr(mod.optim, name)([w], lr=0.05, **({"momentum": 0.9} if name == "SGD" else {}))
        for _ in range(5):
            opt.zero_grad()
            ((w * w).abs() ** 2 + w.real).sum().backward()
            opt.step()
        results.append((w.detach().numpy(), {k: v for k, v in opt.state_dict()["state"][0].items() if k != "step"}))
    (ours, our_state), (theirs, their_state) = results
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert sorted(our_state) == sorted(their_state)
    for key, value in their_state.items():  # the state stays complex, as PyTorch keeps it
        assert our_state[key].dtype.name == str(value.dtype).split(".")[1]
        np.testing.assert_allclose(our_state[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)


def test_ordering_ops_raise_clearly():
    z = engine.tensor([1 + 1j, 2 - 1j])
    for call in (lambda: z < z, lambda: z.max(), lambda: z.sort(), lambda: z.clamp(0, 1), lambda: z.relu(),
                 lambda: engine.maximum(z, z), lambda: z.argmax(), lambda: z.topk(1)):
        with pytest.raises(RuntimeError, match="not supported for complex tensors"):
            call()
    with pytest.raises(RuntimeError, match=r"torch\.sgn instead"):
        z.sign()
    with pytest.raises(RuntimeError, match="floor is not supported for complex inputs"):
        z.floor()
    with pytest.raises(RuntimeError, match="erf is not supported for complex tensors"):
        engine.tensor([1 + 1j], requires_grad=True).erf()
    with pytest.raises(RuntimeError, match="Expected both inputs to be Half, Float or Double"):
        engine.complex(engine.ones(2, dtype=engine.int64), engine.ones(2, dtype=engine.int64))
    with pytest.raises(RuntimeError, match="Expected object of scalar type"):
        engine.polar(engine.ones(2), engine.ones(2, dtype=engine.float64))
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        assert z.to(engine.float32).tolist() == [1.0, 2.0]


def test_save_and_load_round_trip(torch, tmp_path):
    state = {"z": engine.randn(3, 2, dtype=engine.cdouble), "p": engine.nn.Parameter(engine.randn(2, dtype=engine.cfloat))}
    buffer = io.BytesIO()
    engine.save(state, buffer)
    loaded = engine.load(io.BytesIO(buffer.getvalue()))
    assert loaded["z"].dtype is engine.complex128 and loaded["p"].dtype is engine.complex64
    np.testing.assert_array_equal(loaded["z"].numpy(), state["z"].numpy())
    assert isinstance(loaded["p"], engine.nn.Parameter)
    path = tmp_path / "z.pt"
    engine.save(state, path)  # PyTorch's own format: torch reads it back
    np.testing.assert_array_equal(torch.load(path)["z"].numpy(), state["z"].numpy())
    torch.save({"t": torch.tensor([1 + 2j])}, path)
    assert engine.load(path)["t"].tolist() == [1 + 2j]


@pytest.mark.gpu
def test_complex_ops_on_the_cuda_path(torch, cuda_backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3))
    a = engine.tensor(x, device="cuda", requires_grad=True)
    c = engine.complex(a, a * 2)
    loss = (engine.view_as_real(c @ c.mH) ** 2).sum() + engine.polar(a.abs(), a).angle().sum()
    loss.backward()
    t = torch.tensor(x, requires_grad=True)
    tc = torch.complex(t, t * 2)
    expected = (torch.view_as_real(tc @ tc.mH) ** 2).sum() + torch.polar(t.abs(), t).angle().sum()
    expected.backward()
    assert c.device.type == "cuda" and c.real.device.type == "cuda"
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-10)
    np.testing.assert_allclose(a.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-8)
    z = engine.randn(4, dtype=engine.cfloat, device="cuda")
    assert z.dtype is engine.complex64 and z.device.type == "cuda"

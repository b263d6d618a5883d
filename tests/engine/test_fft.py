"""engine.fft against torch.fft: values, n/s/dim/norm handling, gradients, errors, the CUDA path."""

from __future__ import annotations

import numpy as np
import pytest

import engine

NORMS = [None, "backward", "ortho", "forward"]


def _pair(torch, array: np.ndarray, requires_grad: bool = False):
    return (engine.tensor(array, requires_grad=requires_grad), torch.tensor(array, requires_grad=requires_grad))


def _signal(shape, complex_: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if complex_ else x


def _close(ours, theirs, atol=1e-9):
    theirs = theirs.detach().resolve_conj().numpy()
    assert ours.shape == tuple(theirs.shape)
    assert ours.detach().numpy().dtype == theirs.dtype
    np.testing.assert_allclose(ours.detach().numpy(), theirs, atol=atol, rtol=1e-7)


# (name, complex input?, kwargs): each call is made the same way on engine.fft and torch.fft
FORWARD_CASES = [
    ("fft", True, {}), ("fft", False, {"n": 7}), ("fft", True, {"n": 3, "dim": 0}),
    ("ifft", True, {"n": 9}), ("ifft", False, {"dim": -2}),
    ("rfft", False, {}), ("rfft", False, {"n": 9, "dim": 1}), ("rfft", False, {"n": 4}),
    ("irfft", True, {}), ("irfft", True, {"n": 9}), ("irfft", True, {"n": 4, "dim": 0}),
    ("hfft", True, {}), ("hfft", True, {"n": 7}), ("ihfft", False, {}), ("ihfft", False, {"n": 5}),
    ("fft2", True, {}), ("fft2", False, {"s": (4, 6)}), ("ifft2", True, {"dim": (0, 2)}),
    ("rfft2", False, {}), ("rfft2", False, {"s": (3, 8)}), ("irfft2", True, {}), ("irfft2", True, {"s": (5, 7)}),
    ("fftn", True, {}), ("fftn", True, {"s": (2, -1)}), ("fftn", False, {"dim": (1,)}),
    ("ifftn", True, {"s": (3, 4, 5)}), ("rfftn", False, {}), ("rfftn", False, {"s": (6, 5), "dim": (0, 2)}),
    ("irfftn", True, {}), ("irfftn", True, {"s": (4, 4, 9)}), ("irfftn", True, {"dim": (0, 1)}),
    ("hfft2", True, {}), ("ihfft2", False, {}), ("hfftn", True, {"s": (3, 6)}), ("ihfftn", False, {"dim": (0, 2)}),
]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize(("name", "complex_", "kwargs"), FORWARD_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(FORWARD_CASES)])
def test_transform_matches_torch(torch, name, complex_, kwargs, norm):
    ours, theirs = _pair(torch, _signal((3, 5, 6), complex_))
    _close(getattr(engine.fft, name)(ours, norm=norm, **kwargs), getattr(torch.fft, name)(theirs, norm=norm, **kwargs))


def test_single_precision_stays_single(torch):
    x = engine.randn(4, 8)
    assert engine.fft.fft(x).dtype is engine.complex64
    assert engine.fft.rfft(x).dtype is engine.complex64
    assert engine.fft.irfft(engine.fft.rfft(x)).dtype is engine.float32
    assert engine.fft.fft(engine.arange(4)).dtype is engine.complex64  # integers become the default float
    np.testing.assert_allclose(engine.fft.irfft(engine.fft.rfft(x), n=8).numpy(), x.numpy(), atol=1e-5)


GRAD_CASES = [
    ("fft", True, {"n": 8, "norm": "ortho"}), ("fft", False, {"n": 4}), ("ifft", True, {"dim": 0}),
    ("rfft", False, {}), ("rfft", False, {"n": 9, "norm": "forward"}), ("rfft", False, {"n": 3}),
    ("irfft", True, {}), ("irfft", True, {"n": 7}), ("irfft", True, {"n": 12, "norm": "ortho"}),
    ("hfft", True, {"n": 6}), ("ihfft", False, {}),
    ("fft2", True, {"s": (4, 4)}), ("ifft2", False, {}), ("fftn", True, {}), ("ifftn", True, {"s": (2, 3, 7)}),
    ("rfft2", False, {}), ("rfftn", False, {"s": (4, 5, 9), "norm": "ortho"}),
    ("irfft2", True, {"s": (3, 9)}), ("irfftn", True, {}), ("irfftn", True, {"dim": (0, 2), "norm": "forward"}),
]


def _real_loss(mod, out):
    # NOTE: a loss that weighs every output element differently, so each gradient entry is checked
    weights = mod.tensor(np.linspace(0.5, 2.0, out.numel()).reshape(tuple(out.shape)))
    if out.is_complex():
        return (out.real * weights).sum() + ((out.imag * weights) ** 2).sum()
    return (out.sin() * weights).sum()


@pytest.mark.parametrize(("name", "complex_", "kwargs"), GRAD_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_gradient_matches_torch(torch, name, complex_, kwargs):
    ours, theirs = _pair(torch, _signal((3, 4, 5), complex_, seed=1), requires_grad=True)
    loss_ours = _real_loss(engine, getattr(engine.fft, name)(ours, **kwargs))
    loss_theirs = _real_loss(torch, getattr(torch.fft, name)(theirs, **kwargs))
    loss_ours.backward()
    loss_theirs.backward()
    np.testing.assert_allclose(loss_ours.item(), loss_theirs.item(), rtol=1e-9)
    _close(ours.grad, theirs.grad)


def test_double_backward_through_fft(torch):
    ours, theirs = _pair(torch, _signal((6,), True, seed=2), requires_grad=True)
    results = []
    for mod, x in ((engine, ours), (torch, theirs)):
        y = (mod.fft.ifft(mod.fft.fft(x * x)).abs() ** 2).sum()
        (g,) = mod.autograd.grad(y, x, create_graph=True)
        (g.abs() ** 2).sum().backward()
        results.append(x.grad)
    _close(results[0], results[1], atol=1e-8)


@pytest.mark.parametrize("n", [1, 4, 7])
def test_frequencies_and_shifts_match_torch(torch, n):
    _close(engine.fft.fftfreq(n, d=0.5), torch.fft.fftfreq(n, d=0.5))
    _close(engine.fft.rfftfreq(n), torch.fft.rfftfreq(n))
    assert engine.fft.fftfreq(n, dtype=engine.float64).dtype is engine.float64
    ours, theirs = _pair(torch, _signal((n, 5), True))
    for kwargs in ({}, {"dim": 0}, {"dim": (-1,)}, {"dim": (1, 0)}):
        _close(engine.fft.fftshift(ours, **kwargs), torch.fft.fftshift(theirs, **kwargs))
        _close(engine.fft.ifftshift(ours, **kwargs), torch.fft.ifftshift(theirs, **kwargs))


def test_out_argument(torch):
    x = engine.randn(8)
    out = engine.empty(5, dtype=engine.complex64)
    assert engine.fft.rfft(x, out=out) is out
    np.testing.assert_allclose(out.numpy(), engine.fft.rfft(x).numpy())
    with pytest.raises(RuntimeError, match="out= expects"):
        engine.fft.rfft(x, out=engine.empty(3, dtype=engine.complex64))


def test_bad_arguments_raise_like_torch(torch):
    x = engine.randn(4, 4)
    with pytest.raises(ValueError, match='Invalid normalization mode: "bad"'):
        engine.fft.fft(x, norm="bad")
    with pytest.raises(RuntimeError, match="rfft expects a real input tensor"):
        engine.fft.rfft(engine.fft.fft(x))
    with pytest.raises(RuntimeError, match="Invalid number of data points \\(0\\)"):
        engine.fft.fft(x, n=0)
    with pytest.raises(RuntimeError, match="Invalid number of data points \\(0\\)"):
        engine.fft.irfft(engine.ones(1, dtype=engine.complex64))
    with pytest.raises(RuntimeError, match="FFT dims must be unique"):
        engine.fft.fftn(x, dim=(0, -2))
    with pytest.raises(IndexError, match="Dimension out of range"):
        engine.fft.fft(x, dim=2)
    with pytest.raises(RuntimeError, match="same length"):
        engine.fft.fftn(x, s=(4,), dim=(0, 1))


@pytest.mark.gpu
def test_fft_on_the_cuda_path(torch, cuda_backend):
    host = _signal((4, 6), False, seed=3)
    x = engine.tensor(host, device="cuda", requires_grad=True)
    y = engine.fft.irfft(engine.fft.rfft(x) * engine.fft.rfftfreq(6, dtype=engine.float64, device="cuda"), n=6)
    assert y.device.type == "cuda" and y.dtype is engine.float64
    (y * y).sum().backward()
    expected = torch.tensor(host, requires_grad=True)
    ty = torch.fft.irfft(torch.fft.rfft(expected) * torch.fft.rfftfreq(6, dtype=torch.float64), n=6)
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.cpu().detach().numpy(), ty.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(x.grad.cpu().numpy(), expected.grad.numpy(), atol=1e-12)

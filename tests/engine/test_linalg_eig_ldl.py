"""engine.linalg.eig / eigvals and ldl_factor / ldl_factor_ex / ldl_solve against torch.linalg."""

from __future__ import annotations

import numpy as np
import pytest

import engine

LA = engine.linalg
RNG = np.random.default_rng(7)
WEIGHTS = RNG.standard_normal((4, 4))


def _phase_blind_loss(mod, L, V):
    """Depends on eigenvalues and on |V|, which does not change with each column's phase."""
    return (V.abs() * mod.tensor(WEIGHTS)).sum() + (mod.real(L) ** 2).sum() + (mod.imag(L) * mod.real(L)).sum()


@pytest.mark.parametrize("complex_input", [False, True])
def test_eig_matches_torch_up_to_phase(torch, complex_input):
    a = RNG.standard_normal((2, 3, 4, 4)) + (1j * RNG.standard_normal((2, 3, 4, 4)) if complex_input else 0)
    L, V = LA.eig(engine.tensor(a))
    tL, tV = torch.linalg.eig(torch.tensor(a))
    assert L.dtype is engine.complex128 and V.dtype is engine.complex128
    assert L.shape == (2, 3, 4) and V.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(L.numpy(), tL.numpy(), atol=1e-10)
    v, tv = V.numpy(), tV.numpy()
    np.testing.assert_allclose(np.linalg.norm(v, axis=-2), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.einsum("...ij,...ij->...j", v.conj(), tv)), 1.0, atol=1e-10)
    np.testing.assert_allclose(a @ v, v * L.numpy()[..., None, :], atol=1e-10)


def test_real_matrix_with_complex_eigenvalues_and_float32(torch):
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]], np.float32)
    L = LA.eigvals(engine.tensor(rotation))
    assert L.dtype is engine.complex64
    np.testing.assert_allclose(L.numpy(), torch.linalg.eigvals(torch.tensor(rotation)).numpy(), atol=1e-6)
    assert LA.eig(engine.tensor(rotation)).eigenvectors.dtype is engine.complex64


@pytest.mark.parametrize("complex_input", [False, True])
def test_eig_backward_matches_torch(torch, complex_input):
    a = RNG.standard_normal((2, 4, 4)) + (1j * RNG.standard_normal((2, 4, 4)) if complex_input else 0)
    A, tA = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss, t_loss = _phase_blind_loss(engine, *LA.eig(A)), _phase_blind_loss(torch, *torch.linalg.eig(tA))
    loss.backward()
    t_loss.backward()
    assert loss.item() == pytest.approx(t_loss.item(), rel=1e-10)
    assert A.grad.dtype is A.dtype
    np.testing.assert_allclose(A.grad.numpy(), tA.grad.numpy(), atol=1e-9)


def test_eigvals_backward_matches_torch(torch):
    a = RNG.standard_normal((3, 3))
    A, tA = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (engine.real(LA.eigvals(A)) ** 3).sum().backward()
    (torch.real(torch.linalg.eigvals(tA)) ** 3).sum().backward()
    np.testing.assert_allclose(A.grad.numpy(), tA.grad.numpy(), atol=1e-9)


def test_a_loss_that_depends_on_the_eigenvectors_phase_is_refused(torch):
    A = engine.tensor(RNG.standard_normal((3, 3)), requires_grad=True)
    tA = torch.tensor(A.detach().numpy(), requires_grad=True)
    with pytest.raises(RuntimeError, match="ill-defined"):
        torch.imag(torch.linalg.eig(tA).eigenvectors).sum().backward()
    with pytest.raises(RuntimeError, match="ill-defined"):
        engine.imag(LA.eig(A).eigenvectors).sum().backward()


def test_eig_double_backward_is_refused_clearly():
    A = engine.tensor(RNG.standard_normal((3, 3)), requires_grad=True)
    loss = (LA.eigvals(A).abs() ** 2).sum()
    with pytest.raises(RuntimeError, match=r"create_graph=True \(double backward\) is not supported"):
        engine.autograd.grad(loss, A, create_graph=True)


def test_eig_bad_input():
    with pytest.raises(RuntimeError, match="square"):
        LA.eig(engine.zeros(2, 3))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        LA.eigvals(engine.zeros(3))
    with pytest.raises(RuntimeError, match="floating point or complex"):
        LA.eig(engine.zeros(2, 2, dtype=engine.int64))


def _symmetric(shape, small_diagonal=False):
    a = RNG.standard_normal(shape)
    a = a + np.swapaxes(a, -1, -2)
    if small_diagonal:  # forces Bunch-Kaufman's 2x2 pivots and row interchanges
        n = shape[-1]
        a[..., range(n), range(n)] *= 0.01
    return a


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("small_diagonal", [False, True])
def test_ldl_factor_is_lapacks_sytrf(torch, n, small_diagonal):
    a = _symmetric((2, 3, n, n), small_diagonal)
    a[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = 99.0  # the upper triangle is never read
    LD, pivots = LA.ldl_factor(engine.tensor(a))
    tLD, t_pivots = torch.linalg.ldl_factor(torch.tensor(a))
    assert pivots.dtype is engine.int32 and pivots.shape == (2, 3, n)
    np.testing.assert_array_equal(pivots.numpy(), t_pivots.numpy())
    np.testing.assert_allclose(LD.numpy(), tLD.numpy(), atol=1e-10)


def test_two_by_two_pivots_occur_and_solve_matches_torch(torch):
    a = _symmetric((4, 6, 6), small_diagonal=True)
    b = RNG.standard_normal((4, 6, 3))
    LD, pivots, info = LA.ldl_factor_ex(engine.tensor(a))
    assert (pivots.numpy() < 0).any() and not info.numpy().any()
    X = LA.ldl_solve(LD, pivots, engine.tensor(b))
    tLD, t_pivots = torch.linalg.ldl_factor(torch.tensor(a))
    np.testing.assert_allclose(X.numpy(), torch.linalg.ldl_solve(tLD, t_pivots, torch.tensor(b)).numpy(),
                               rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(a @ X.numpy(), b, atol=1e-8)


def test_ldl_solve_broadcasts_batches_and_keeps_float32(torch):
    a = _symmetric((3, 4, 4)).astype(np.float32)
    b = RNG.standard_normal((2, 1, 4, 2)).astype(np.float32)
    LD, pivots = LA.ldl_factor(engine.tensor(a))
    X = LA.ldl_solve(LD, pivots, engine.tensor(b))
    tLD, t_pivots = torch.linalg.ldl_factor(torch.tensor(a))
    # torch 2.13 crashes on broadcast batches here, so its side gets them expanded
    tLD, t_pivots = tLD.expand(2, 3, 4, 4).contiguous(), t_pivots.expand(2, 3, 4).contiguous()
    expected = torch.linalg.ldl_solve(tLD, t_pivots, torch.tensor(b).expand(2, 3, 4, 2).contiguous())
    assert X.dtype is engine.float32 and X.shape == tuple(expected.shape) == (2, 3, 4, 2)
    np.testing.assert_allclose(X.numpy(), expected.numpy(), rtol=1e-3, atol=1e-3)


def test_singular_d_reports_info_or_raises(torch):
    a = np.zeros((2, 3, 3))
    a[0] = _symmetric((3, 3))
    info = LA.ldl_factor_ex(engine.tensor(a)).info
    t_info = torch.linalg.ldl_factor_ex(torch.tensor(a)).info
    np.testing.assert_array_equal(info.numpy(), t_info.numpy())
    assert info.numpy().tolist() == [0, 1]
    with pytest.raises(engine.linalg.LinAlgError, match=r"\(Batch element 1\).*singular"):
        LA.ldl_factor(engine.tensor(a))
    with pytest.raises(engine.linalg.LinAlgError, match="singular"):
        LA.ldl_factor_ex(engine.tensor(a), check_errors=True)


def test_ldl_bad_input():
    LD, pivots = LA.ldl_factor(engine.eye(3, dtype=engine.float64))
    with pytest.raises(RuntimeError, match="square"):
        LA.ldl_factor(engine.zeros(2, 3))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        LA.ldl_solve(LD, pivots, engine.zeros(2, 1, dtype=engine.float64))
    with pytest.raises(RuntimeError, match="same dtype"):
        LA.ldl_solve(LD, pivots, engine.zeros(3, 1))
    with pytest.raises(RuntimeError, match="pivots to be integers"):
        LA.ldl_solve(LD, pivots.double(), engine.zeros(3, 1, dtype=engine.float64))
    with pytest.raises(RuntimeError, match=r"pivots\.shape"):
        LA.ldl_solve(LD, pivots[:2], engine.zeros(3, 1, dtype=engine.float64))

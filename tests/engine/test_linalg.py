"""engine.linalg against torch.linalg: forward values, gradients (float64), batches, result tuples and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import engine
from engine.autograd.gradcheck import gradcheck

LA = engine.linalg
RNG = np.random.default_rng(1234)
A33 = RNG.standard_normal((2, 3, 3))
B32 = RNG.standard_normal((2, 3, 2))
SPD = A33 @ A33.transpose(0, 2, 1) + 3 * np.eye(3)
SYM = A33 + A33.transpose(0, 2, 1)
TALL = RNG.standard_normal((2, 4, 3))
WIDE = RNG.standard_normal((2, 3, 5))
VEC = RNG.standard_normal((2, 3))


def _squares(out):
    """A loss that is blind to the sign conventions of eigenvectors / singular vectors."""
    if isinstance(out, tuple):
        return sum((o**4).sum() for o in out if o.numel())
    return (out * out).sum()


def _cubes(out):
    return sum((o**3).sum() for o in out)


def check_against_torch(torch, e_fn, t_fn, *arrays, loss=_squares, forward=True, rtol=1e-6, atol=1e-8):
    """Same loss value and same gradient for every input, in float64."""
    es = [engine.tensor(a, dtype=engine.float64, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out_e, out_t = e_fn(*es), t_fn(*ts)
    if forward:
        pairs = zip(out_e, out_t, strict=True) if isinstance(out_e, tuple) else [(out_e, out_t)]
        for e, t in pairs:
            assert tuple(e.shape) == tuple(t.shape)
            np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
    loss_e, loss_t = loss(out_e), loss(out_t)
    np.testing.assert_allclose(loss_e.item(), loss_t.item(), rtol=rtol, atol=atol)
    loss_e.backward()
    loss_t.backward()
    for e, t in zip(es, ts, strict=True):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)


CASES = {
    "inv": (lambda m: m.linalg.inv, [A33]),
    "inv_2d": (lambda m: m.linalg.inv, [A33[0]]),
    "solve": (lambda m: m.linalg.solve, [A33, B32]),
    "solve_vector": (lambda m: m.linalg.solve, [A33, B32[..., 0]]),
    "solve_1d_rhs": (lambda m: m.linalg.solve, [A33, B32[0, :, 0]]),
    "solve_broadcast": (lambda m: m.linalg.solve, [A33[0], B32]),
    "solve_right": (lambda m: lambda a, b: m.linalg.solve(a, b, left=False), [A33, B32.transpose(0, 2, 1)]),
    "det": (lambda m: m.linalg.det, [A33]),
    "logabsdet": (lambda m: lambda a: m.linalg.slogdet(a).logabsdet, [A33]),
    "cholesky": (lambda m: m.linalg.cholesky, [SPD]),
    "cholesky_upper": (lambda m: lambda a: m.linalg.cholesky(a, upper=True), [SPD]),
    "qr_square": (lambda m: m.linalg.qr, [A33]),
    "qr_tall": (lambda m: m.linalg.qr, [TALL]),
    "qr_wide": (lambda m: m.linalg.qr, [WIDE]),
    "qr_complete_wide": (lambda m: lambda a: m.linalg.qr(a, mode="complete"), [WIDE]),
    "eigvalsh": (lambda m: m.linalg.eigvalsh, [SYM]),
    "svdvals_tall": (lambda m: m.linalg.svdvals, [TALL]),
    "svdvals_wide": (lambda m: m.linalg.svdvals, [WIDE]),
    "pinv_tall": (lambda m: m.linalg.pinv, [TALL]),
    "pinv_wide": (lambda m: m.linalg.pinv, [WIDE]),
    "lstsq": (lambda m: lambda a, b: m.linalg.lstsq(a, b).solution, [TALL, RNG.standard_normal((2, 4, 2))]),
    "matrix_exp": (lambda m: m.linalg.matrix_exp, [A33]),
    "matrix_exp_large": (lambda m: m.linalg.matrix_exp, [3 * A33]),
    "cross": (lambda m: m.linalg.cross, [VEC, VEC[::-1].copy()]),
    "cross_dim0": (lambda m: lambda a, b: m.linalg.cross(a, b, dim=0), [VEC.T.copy(), VEC[::-1].T.copy()]),
    "vander": (lambda m: m.linalg.vander, [VEC]),
    "vander_N": (lambda m: lambda x: m.linalg.vander(x, N=5), [VEC]),
    "norm_default": (lambda m: m.linalg.norm, [A33]),
    "norm_matrix_2": (lambda m: lambda a: m.linalg.norm(a[0], 2), [A33]),
    "norm_vector_dim": (lambda m: lambda a: m.linalg.norm(a, 3, dim=1, keepdim=True), [A33]),
    "norm_matrix_dims": (lambda m: lambda a: m.linalg.norm(a, "nuc", dim=(0, 2)), [TALL]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(torch, name):
    make, arrays = CASES[name]
    check_against_torch(torch, make(engine), make(torch), *arrays)


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unitriangular", [True, False])
def test_solve_triangular(torch, upper, left, unitriangular):
    a = A33 + 3 * np.eye(3)  # the other triangle is nonzero: it must be ignored (and get no gradient)
    b = B32 if left else B32.transpose(0, 2, 1)

    def make(m):
        return lambda x, y: m.linalg.solve_triangular(x, y, upper=upper, left=left, unitriangular=unitriangular)

    check_against_torch(torch, make(engine), make(torch), a, b)


@pytest.mark.parametrize("ord", ["fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2])
def test_matrix_norm(torch, ord):
    check_against_torch(torch, lambda a: LA.matrix_norm(a, ord), lambda a: torch.linalg.matrix_norm(a, ord), TALL)
    check_against_torch(torch, lambda a: LA.matrix_norm(a, ord, dim=(2, 0), keepdim=True),
                        lambda a: torch.linalg.matrix_norm(a, ord, dim=(2, 0), keepdim=True), TALL)


@pytest.mark.parametrize("ord", [2, 1, math.inf, -math.inf, 3, 0.5, -1.5])
@pytest.mark.parametrize("dim,keepdim", [(None, False), ((0, 2), True), (1, False), (-1, True)])
def test_vector_norm(torch, ord, dim, keepdim):
    check_against_torch(torch, lambda x: LA.vector_norm(x, ord, dim, keepdim),
                        lambda x: torch.linalg.vector_norm(x, ord, dim, keepdim), TALL)


def test_vector_norm_zero_vector_has_zero_gradient(torch):
    for ord in (2, 3, 1.5):
        x = engine.zeros(4, dtype=engine.float64, requires_grad=True)
        LA.vector_norm(x, ord).backward()
        assert x.grad.tolist() == [0.0] * 4
    x = engine.tensor([0.0, 2.0, -3.0, 0.0], dtype=engine.float64)
    assert LA.vector_norm(x, 0).item() == torch.linalg.vector_norm(torch.tensor([0.0, 2.0, -3.0, 0.0]), 0).item() == 2


def test_vector_norm_dtype_and_errors():
    x = engine.tensor([3.0, 4.0])
    assert LA.vector_norm(x, dtype=engine.float64).dtype is engine.float64
    with pytest.raises(RuntimeError, match="Expected a floating point"):
        LA.vector_norm(engine.tensor([3, 4]))
    with pytest.raises(RuntimeError, match="ord"):
        LA.vector_norm(x, "fro")


def test_eigh_and_svd_match_up_to_sign(torch):
    for uplo in ("L", "U"):
        check_against_torch(torch, lambda a, uplo=uplo: LA.eigh(a, uplo),
                            lambda a, uplo=uplo: torch.linalg.eigh(a, uplo), A33, forward=False)
        w, v = LA.eigh(engine.tensor(A33), UPLO=uplo)
        tw, tv = torch.linalg.eigh(torch.tensor(A33), UPLO=uplo)
        np.testing.assert_allclose(w.numpy(), tw.numpy(), rtol=1e-10)
        np.testing.assert_allclose(np.abs(v.numpy()), np.abs(tv.numpy()), rtol=1e-8)
    for array in (TALL, WIDE, A33):
        check_against_torch(torch, lambda a: LA.svd(a, full_matrices=False),
                            lambda a: torch.linalg.svd(a, full_matrices=False), array, forward=False)
        U, S, Vh = LA.svd(engine.tensor(array))  # full_matrices=True by default
        tU, tS, tVh = torch.linalg.svd(torch.tensor(array))
        assert (U.shape, S.shape, Vh.shape) == (tU.shape, tS.shape, tVh.shape)
        k = S.shape[-1]
        rebuilt = (U[..., :, :k] * S.unsqueeze(-2)) @ Vh[..., :k, :]
        np.testing.assert_allclose(rebuilt.numpy(), array, atol=1e-12)
        np.testing.assert_allclose(S.numpy(), tS.numpy(), rtol=1e-10)


def test_result_tuples():
    out = LA.slogdet(engine.tensor(A33))
    assert type(out).__name__ == "linalg_slogdet" and out.sign.shape == (2,) and out._fields == ("sign", "logabsdet")
    assert LA.qr(engine.tensor(TALL))._fields == ("Q", "R")
    assert LA.svd(engine.tensor(TALL))._fields == ("U", "S", "Vh")
    assert LA.eigh(engine.tensor(SYM))._fields == ("eigenvalues", "eigenvectors")
    assert LA.lstsq(engine.tensor(TALL), engine.tensor(TALL))._fields == ("solution", "residuals", "rank",
                                                                        "singular_values")


@pytest.mark.parametrize("name,fn", [
    ("inv", lambda a: LA.inv(a)),
    ("solve", lambda a: LA.solve(a, a[..., :1] * 2 + 1)),
    ("det", lambda a: LA.det(a)),
    ("cholesky", lambda a: LA.cholesky(a @ a.mT + 3 * engine.eye(3, dtype=engine.float64))),
    ("eigh", lambda a: LA.eigh(a + a.mT).eigenvalues),
    ("qr", lambda a: LA.qr(a).R),
    ("pinv", lambda a: LA.pinv(a[..., :2])),
    ("matrix_exp", lambda a: LA.matrix_exp(a)),
])
def test_gradcheck(name, fn):
    a = engine.tensor(A33, dtype=engine.float64, requires_grad=True)
    assert gradcheck(fn, (a,))


def test_double_backward_matches_torch(torch):
    for fn_name in ("inv", "det"):
        a = engine.tensor(A33[0], dtype=engine.float64, requires_grad=True)
        ta = torch.tensor(A33[0], dtype=torch.float64, requires_grad=True)
        (g,) = engine.autograd.grad(getattr(LA, fn_name)(a).sum(), a, create_graph=True)
        (tg,) = torch.autograd.grad(getattr(torch.linalg, fn_name)(ta).sum(), ta, create_graph=True)
        (g * g).sum().backward()
        (tg * tg).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-6)


def test_float32_keeps_dtype_and_values(torch):
    a = A33.astype(np.float32)
    for name in ("inv", "det", "cholesky", "matrix_exp"):
        arg = SPD.astype(np.float32) if name == "cholesky" else a
        out = getattr(LA, name)(engine.tensor(arg))
        ref = getattr(torch.linalg, name)(torch.tensor(arg))
        assert out.dtype is engine.float32
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_det_of_a_singular_matrix_has_the_cofactor_matrix_as_gradient():
    # det is a polynomial, so its gradient is the cofactor matrix everywhere, singular matrices included.
    # NOTE: torch 2.13 returns zeros for this exactly singular input (its LU-based backward), a wrong value.
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    cofactors = np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(singular, i, 0), j, 1))
                           for j in range(3)] for i in range(3)])
    a = engine.tensor(singular, requires_grad=True)
    LA.det(a).backward()
    np.testing.assert_allclose(a.grad.numpy(), cofactors, atol=1e-10)
    assert np.abs(cofactors).max() > 1  # not the zero matrix


def test_pinv_rank_deficient_and_tolerances(torch):
    a = np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(LA.pinv(engine.tensor(a)).numpy(), torch.linalg.pinv(torch.tensor(a)).numpy())
    b = np.diag([1.0, 1e-3, 1e-9])
    for kwargs in ({}, {"atol": 1e-2}, {"rtol": 1e-4}, {"hermitian": True}):
        np.testing.assert_allclose(LA.pinv(engine.tensor(b), **kwargs).numpy(),
                                   torch.linalg.pinv(torch.tensor(b), **kwargs).numpy())
        assert LA.matrix_rank(engine.tensor(b), **kwargs).item() == torch.linalg.matrix_rank(
            torch.tensor(b), **kwargs).item()
    ranks = LA.matrix_rank(engine.tensor(np.stack([np.eye(3), b, np.zeros((3, 3))])))
    assert ranks.dtype is engine.int64 and ranks.tolist() == [3, 3, 0]


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
def test_lstsq_fields_follow_the_driver(torch, driver):
    a, b = TALL, RNG.standard_normal((2, 4, 2))
    got = LA.lstsq(engine.tensor(a), engine.tensor(b), driver=driver)
    want = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    for e, t in zip(got, want, strict=True):
        assert tuple(e.shape) == tuple(t.shape) and e.dtype.name == str(t.dtype).split(".")[1]
        np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-8, atol=1e-10)


def test_qr_modes(torch):
    for mode in ("reduced", "complete", "r"):
        got, want = LA.qr(engine.tensor(TALL), mode=mode), torch.linalg.qr(torch.tensor(TALL), mode=mode)
        for e, t in zip(got, want, strict=True):
            assert tuple(e.shape) == tuple(t.shape)
            np.testing.assert_allclose(e.numpy(), t.numpy(), atol=1e-12)
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        LA.qr(engine.tensor(TALL), mode="full")
    q, r = LA.qr(engine.tensor(TALL, requires_grad=True), mode="complete")
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete'"):
        (q.sum() + r.sum()).backward()


def test_singular_matrices_raise_linalg_error(torch):
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert issubclass(LA.LinAlgError, RuntimeError)
    message = ("linalg.inv: The diagonal element 2 is zero, the inversion could not be completed because the input "
               "matrix is singular.")
    with pytest.raises(LA.LinAlgError) as caught:
        LA.inv(engine.tensor(singular))
    with pytest.raises(torch.linalg.LinAlgError) as torch_caught:
        torch.linalg.inv(torch.tensor(singular))
    assert str(caught.value) == str(torch_caught.value) == message
    with pytest.raises(LA.LinAlgError, match=r"\(Batch element 1\): The diagonal element 2"):
        LA.inv(engine.tensor(np.stack([np.eye(2), singular])))
    with pytest.raises(LA.LinAlgError, match="solver failed because the input matrix is singular"):
        LA.solve(engine.tensor(singular), engine.tensor([1.0, 2.0], dtype=engine.float64))
    with pytest.raises(LA.LinAlgError, match=r"\(Batch element 1\): .*leading minor of order 2"):
        LA.cholesky(engine.tensor(np.stack([np.eye(2), singular])))


def test_ex_variants_report_info(torch):
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    batch = np.stack([np.eye(2) * 2, singular])
    inverse, info = LA.inv_ex(engine.tensor(batch))
    assert info.dtype is engine.int32 and info.tolist() == torch.linalg.inv_ex(torch.tensor(batch)).info.tolist()
    np.testing.assert_allclose(inverse[0].numpy(), np.eye(2) / 2)
    with pytest.raises(LA.LinAlgError):
        LA.inv_ex(engine.tensor(batch), check_errors=True)
    L, info = LA.cholesky_ex(engine.tensor(batch))
    assert info.tolist() == torch.linalg.cholesky_ex(torch.tensor(batch)).info.tolist() == [0, 2]
    np.testing.assert_allclose(L[0].numpy(), np.eye(2) * np.sqrt(2))
    result, info = LA.solve_ex(engine.tensor(batch[:1]), engine.tensor(np.ones((1, 2))))
    np.testing.assert_allclose(result.numpy(), [[0.5, 0.5]])
    assert info.tolist() == [0]


def test_bad_shapes_and_dtypes_raise_clear_errors():
    with pytest.raises(RuntimeError, match="A must be batches of square matrices, but they are 2 by 3 matrices"):
        LA.inv(engine.ones(2, 3))
    with pytest.raises(RuntimeError, match="must have at least 2 dimensions"):
        LA.det(engine.ones(3))
    with pytest.raises(RuntimeError, match=r"Expected a floating point or complex tensor as input\. Got Long"):
        LA.inv(engine.tensor([[1, 2], [3, 4]]))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        LA.solve(engine.eye(3), engine.ones(2, 1))
    with pytest.raises(RuntimeError, match="same dtype"):
        LA.solve(engine.eye(2), engine.ones(2, dtype=engine.float64))
    with pytest.raises(RuntimeError, match="inputs dimension -1 must have length 3"):
        LA.cross(engine.ones(2), engine.ones(2))
    with pytest.raises(RuntimeError, match="N must be greater than 1"):
        LA.vander(engine.ones(2), N=1)
    with pytest.raises(RuntimeError, match="UPLO"):
        LA.eigh(engine.eye(2), UPLO="X")
    with pytest.raises(RuntimeError, match="Order"):
        LA.matrix_norm(engine.eye(2), "bogus")


def test_top_level_names():
    assert engine.linalg is LA and "linalg" in engine.__all__
    for name in ("inv", "solve", "det", "slogdet", "svd", "svdvals", "qr", "cholesky", "eigh", "eigvalsh", "lstsq",
                 "pinv", "matrix_rank", "matrix_norm", "vector_norm", "norm", "matrix_exp", "cross", "vander",
                 "solve_triangular", "inv_ex", "cholesky_ex", "solve_ex"):
        assert callable(getattr(LA, name))


@pytest.mark.gpu
def test_cuda_path_matches_cpu(cuda_backend):
    a = engine.tensor(A33, dtype=engine.float64)
    spd = engine.tensor(SPD, dtype=engine.float64)
    for fn in (LA.inv, LA.det, lambda x: LA.slogdet(x).logabsdet, LA.matrix_exp, LA.svdvals, LA.pinv,
               lambda x: LA.solve(x, x[..., 0]), lambda x: LA.matrix_norm(x, "nuc"), LA.norm,
               lambda x: LA.qr(x).R, lambda x: LA.eigh(x + x.mT).eigenvalues, lambda x: LA.lu(x).U,
               lambda x: LA.lu_solve(*LA.lu_factor(x), x), lambda x: LA.cholesky(x @ x.mT + engine.eye(3, dtype=x.dtype, device=x.device)),
               lambda x: LA.solve_triangular(x, x, upper=True), lambda x: LA.matrix_rank(x).to(x.dtype) + x.sum()):
        x = a.to("cuda").requires_grad_()
        out = fn(x)
        assert out.device.type == "cuda"
        (out * out).sum().backward()
        ref = a.clone().requires_grad_()
        expected = fn(ref)
        (expected * expected).sum().backward()
        np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(x.grad.cpu().numpy(), ref.grad.numpy(), rtol=1e-7, atol=1e-9)
    L = LA.cholesky(spd.to("cuda"))
    np.testing.assert_allclose(L.cpu().numpy(), np.linalg.cholesky(SPD))
    with pytest.raises(LA.LinAlgError):
        LA.inv(engine.zeros(2, 2, device="cuda"))


def test_composite_functions_match_torch(torch):
    square = A33[0] + 3 * np.eye(3)
    cases = [
        (lambda m: lambda a: m.linalg.matrix_power(a, 3), [A33]),
        (lambda m: lambda a: m.linalg.matrix_power(a, 0), [A33]),
        (lambda m: lambda a: m.linalg.diagonal(a, offset=1), [TALL]),
        (lambda m: lambda a: m.linalg.diagonal(a, offset=-1, dim1=0, dim2=2), [TALL]),
        (lambda m: lambda a, b: m.linalg.vecdot(a, b, dim=0), [VEC, VEC[::-1].copy()]),
        (lambda m: lambda a, b, c: m.linalg.multi_dot([a, b, c]), [VEC[0], A33[0], TALL[0].T.copy()]),
        (lambda m: m.linalg.cond, [A33]),
        (lambda m: lambda a: m.linalg.cond(a, -2), [TALL]),
        (lambda m: lambda a: m.linalg.tensorinv(a.reshape(3, 3, 9), ind=2), [np.kron(square, square)]),
        (lambda m: lambda a, b: m.linalg.tensorsolve(a.reshape(3, 3, 9), b), [np.kron(square, square), A33[0]]),
        (lambda m: m.linalg.matmul, [A33, B32]),
    ]
    for make, arrays in cases:
        check_against_torch(torch, make(engine), make(torch), *arrays)
    # (torch's own matrix_power(A, -2) backward trips over an in-place write; compare with inv(A) @ inv(A))
    check_against_torch(torch, lambda a: LA.matrix_power(a, -2),
                        lambda a: torch.linalg.inv(a) @ torch.linalg.inv(a), A33)
    # (the same for torch's cond(A, 'fro'))
    check_against_torch(torch, lambda a: LA.cond(a, "fro"), lambda a: torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(
        torch.linalg.inv(a)), A33)
    np.testing.assert_allclose(LA.cond(engine.tensor(A33), "fro").numpy(), torch.linalg.cond(torch.tensor(A33), "fro"))
    with pytest.raises(RuntimeError, match="at least 2 tensors"):
        LA.multi_dot([engine.eye(2)])


@pytest.mark.parametrize("array", [A33, TALL, WIDE], ids=["square", "tall", "wide"])
def test_lu_matches_torch(torch, array):
    check_against_torch(torch, LA.lu, torch.linalg.lu, array, loss=_cubes)
    check_against_torch(torch, lambda a: LA.lu_factor(a).LU, lambda a: torch.linalg.lu_factor(a).LU, array)
    assert LA.lu_factor(engine.tensor(array)).pivots.tolist() == torch.linalg.lu_factor(
        torch.tensor(array)).pivots.tolist()


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [True, False])
def test_lu_solve_matches_torch(torch, left, adjoint):
    b = B32 if left else B32.transpose(0, 2, 1)

    def make(m):
        def fn(a, b):
            factor, pivots = m.linalg.lu_factor(a)
            return m.linalg.lu_solve(factor, pivots, b, left=left, adjoint=adjoint)
        return fn

    check_against_torch(torch, make(engine), make(torch), A33, b)


def test_lu_factor_of_singular_matrix(torch):
    singular = np.stack([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]])
    with pytest.raises(RuntimeError, match=r"\(Batch element 1\): U\[2,2\] is zero"):
        LA.lu_factor(engine.tensor(singular))
    got, want = LA.lu_factor_ex(engine.tensor(singular)), torch.linalg.lu_factor_ex(torch.tensor(singular))
    for e, t in zip(got, want, strict=True):
        np.testing.assert_allclose(e.numpy(), t.numpy())
    P, L, U = LA.lu(engine.tensor(singular))
    np.testing.assert_allclose((P @ L @ U).numpy(), singular)


def test_householder_product_and_geqrf_match_torch(torch):
    tau = RNG.standard_normal((2, 2))
    check_against_torch(torch, LA.householder_product, torch.linalg.householder_product, TALL, tau)
    a, t = engine.geqrf(engine.tensor(TALL))
    ta, tt = torch.geqrf(torch.tensor(TALL))
    np.testing.assert_allclose(a.numpy(), ta.numpy(), atol=1e-12)
    np.testing.assert_allclose(t.numpy(), tt.numpy(), atol=1e-12)
    other = RNG.standard_normal((2, 4, 2))
    for transpose in (False, True):
        np.testing.assert_allclose(
            engine.ormqr(a, t, engine.tensor(other), transpose=transpose).numpy(),
            torch.ormqr(ta, tt, torch.tensor(other), transpose=transpose).numpy(), atol=1e-12)
        np.testing.assert_allclose(
            engine.ormqr(a, t, engine.tensor(other.transpose(0, 2, 1)), left=False, transpose=transpose).numpy(),
            torch.ormqr(ta, tt, torch.tensor(other.transpose(0, 2, 1)), left=False, transpose=transpose).numpy(),
            atol=1e-12)


@pytest.mark.filterwarnings("ignore:.*deprecated:UserWarning")  # torch's own notes on torch.cholesky, torch.qr ...
def test_top_level_spellings_match_torch(torch):
    square = A33 + 3 * np.eye(3)
    upper = np.triu(square)
    cases = [
        (lambda m: m.det, [A33]),
        (lambda m: m.logdet, [SPD]),
        (lambda m: lambda a: m.slogdet(a).logabsdet, [A33]),
        (lambda m: m.inverse, [A33]),
        (lambda m: lambda a: a.inverse(), [A33]),
        (lambda m: lambda a: a.det(), [A33]),
        (lambda m: lambda a: m.pinverse(a), [TALL]),
        (lambda m: m.matrix_exp, [A33]),
        (lambda m: lambda a: a.matrix_power(2), [A33]),
        (lambda m: lambda a: m.cholesky(a, upper=True), [SPD]),
        (lambda m: lambda b, a: m.cholesky_solve(b, m.linalg.cholesky(a)), [B32, SPD]),
        (lambda m: lambda a: m.cholesky_inverse(m.linalg.cholesky(a)), [SPD]),
        (lambda m: lambda a: m.cholesky_inverse(m.linalg.cholesky(a, upper=True), upper=True), [SPD]),
        (lambda m: lambda a: m.qr(a, some=False), [A33[0]]),
        (lambda m: lambda a: a.qr(), [TALL]),
        (lambda m: lambda b, a: m.triangular_solve(b, a).solution, [B32, upper]),
        (lambda m: lambda b, a: m.triangular_solve(b, a, upper=False, transpose=True).solution, [B32, square]),
        (lambda m: lambda b, a: m.lu_solve(b, *m.linalg.lu_factor(a)), [B32, A33]),
        (lambda m: lambda a: m.lu_unpack(*m.linalg.lu_factor(a)), [A33]),
        (lambda m: lambda a, b: m.cross(a, b), [VEC.T.copy(), VEC[::-1].T.copy()]),
        (lambda m: lambda a, b, c: m.chain_matmul(a, b, c), [A33[0], A33[1], B32[0]]),
        (lambda m: lambda a, t: m.orgqr(a, t), [TALL, RNG.standard_normal((2, 3))]),
    ]
    for make, arrays in cases:
        check_against_torch(torch, make(engine), make(torch), *arrays)
    # torch.vander's own backward trips over an in-place write: grads are checked against linalg.vander
    check_against_torch(torch, lambda a: engine.vander(a[0]), lambda a: torch.linalg.vander(a[0]).flip(-1), VEC)
    check_against_torch(torch, lambda a: engine.vander(a[0], N=4, increasing=True),
                        lambda a: torch.linalg.vander(a[0], N=4), VEC)
    for N in (None, 0, 1, 4):
        for increasing in (False, True):
            np.testing.assert_allclose(engine.vander(engine.tensor(VEC[0]), N, increasing).numpy(),
                                       torch.vander(torch.tensor(VEC[0]), N, increasing).numpy())
    U, S, V = engine.svd(engine.tensor(TALL))
    np.testing.assert_allclose(((U * S.unsqueeze(-2)) @ V.mT).numpy(), TALL, atol=1e-12)
    assert type(engine.svd(engine.tensor(TALL))).__name__ == "svd" and V.shape == (2, 3, 3)
    U, S, V = engine.svd(engine.tensor(TALL), compute_uv=False)
    tU, _, tV = torch.svd(torch.tensor(TALL), compute_uv=False)
    assert (U.shape, V.shape) == (tuple(tU.shape), tuple(tV.shape)) and not U.numpy().any()
    LU, _, infos = engine.lu(engine.tensor(A33), get_infos=True)
    assert infos.tolist() == [0, 0]
    np.testing.assert_allclose(LU.numpy(), torch.linalg.lu_factor(torch.tensor(A33)).LU.numpy())
    assert math.isnan(engine.logdet(engine.tensor(np.diag([-1.0, 1.0]))).item())

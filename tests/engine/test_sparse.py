"""Sparse COO tensors against torch.sparse: construction, coalesce, conversions, mm and its gradients."""

from __future__ import annotations

import numpy as np
import pytest

import engine

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled:UserWarning")
RNG = np.random.default_rng(5)
INDICES = [[0, 2, 1, 2, 0], [1, 0, 3, 0, 1]]  # (2, 0) and (0, 1) repeated: uncoalesced
VALUES = RNG.standard_normal(5)
DENSE = RNG.standard_normal((4, 3))


def _pair(torch, requires_grad=False):
    e = engine.sparse_coo_tensor(INDICES, engine.tensor(VALUES), (3, 4), requires_grad=requires_grad)
    t = torch.sparse_coo_tensor(INDICES, torch.tensor(VALUES), (3, 4), requires_grad=requires_grad)
    return e, t


def test_construction_coalesce_and_conversions_match_torch(torch):
    e, t = _pair(torch)
    assert e.is_sparse and e.layout is engine.sparse_coo and repr(e.layout) == "engine.sparse_coo"
    assert engine.ones(2).layout is engine.strided and not engine.ones(2).is_sparse
    assert tuple(e.shape) == (3, 4) and e.dim() == 2 and e._nnz() == 5 and not e.is_coalesced()
    assert (e.sparse_dim(), e.dense_dim()) == (t.sparse_dim(), t.dense_dim())
    np.testing.assert_allclose(e.to_dense().numpy(), t.to_dense().numpy())
    ec, tc = e.coalesce(), t.coalesce()
    assert ec.is_coalesced() and ec._nnz() == tc._nnz() == 3
    np.testing.assert_array_equal(ec.indices().numpy(), tc.indices().numpy())
    np.testing.assert_allclose(ec.values().numpy(), tc.values().numpy())
    with pytest.raises(RuntimeError, match="Cannot get indices on an uncoalesced tensor"):
        e.indices()
    dense = DENSE * (RNG.random(DENSE.shape) > 0.5)
    es, ts = engine.tensor(dense).to_sparse(), torch.tensor(dense).to_sparse()
    np.testing.assert_array_equal(es.indices().numpy(), ts.indices().numpy())
    np.testing.assert_allclose(es.values().numpy(), ts.values().numpy())
    hybrid_e, hybrid_t = engine.tensor(dense).to_sparse(1), torch.tensor(dense).to_sparse(1)
    assert hybrid_e.dense_dim() == hybrid_t.dense_dim() == 1
    np.testing.assert_allclose(hybrid_e.to_dense().numpy(), dense)
    inferred = engine.sparse_coo_tensor(INDICES, engine.tensor(VALUES))
    assert tuple(inferred.shape) == tuple(torch.sparse_coo_tensor(INDICES, torch.tensor(VALUES)).shape)


@pytest.mark.parametrize("how", ["sparse.mm", "mm", "matmul", "operator"])
def test_mm_and_its_gradients_match_torch(torch, how):
    e, t = _pair(torch, requires_grad=True)
    de = engine.tensor(DENSE, requires_grad=True)
    dt = torch.tensor(DENSE, requires_grad=True)
    call = {"sparse.mm": lambda m, a, b: m.sparse.mm(a, b), "mm": lambda m, a, b: m.mm(a, b),
            "matmul": lambda m, a, b: m.matmul(a, b), "operator": lambda m, a, b: a @ b}[how]
    out_e, out_t = call(engine, e, de), call(torch, t, dt)
    np.testing.assert_allclose(out_e.detach().numpy(), out_t.detach().numpy(), rtol=1e-12)
    weights = RNG.standard_normal(out_t.shape)
    (out_e * engine.tensor(weights)).sum().backward()
    (out_t * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(de.grad.numpy(), dt.grad.numpy(), rtol=1e-12)
    assert e.grad.is_sparse and e.grad.is_coalesced()
    want = t.grad.to_dense().numpy() if t.grad.is_sparse else t.grad.numpy()
    # NOTE: torch.mm / @ give a sparse leaf a dense gradient; the engine keeps it at the stored entries
    mask = np.zeros((3, 4), dtype=bool)
    mask[tuple(INDICES)] = True
    np.testing.assert_allclose(e.grad.to_dense().numpy(), np.where(mask, want, 0.0), rtol=1e-12)


def test_gradient_reaches_the_values_tensor_and_double_backward(torch):
    values = engine.tensor(VALUES, requires_grad=True)
    s = engine.sparse_coo_tensor(INDICES, values * 2, (3, 4))
    d = engine.tensor(DENSE, requires_grad=True)
    out = engine.sparse.mm(s, d)
    (g,) = engine.autograd.grad((out ** 2).sum(), d, create_graph=True)
    g.sum().backward()
    tv = torch.tensor(VALUES, requires_grad=True)
    td = torch.tensor(DENSE, requires_grad=True)
    t_out = torch.sparse.mm(torch.sparse_coo_tensor(INDICES, tv * 2, (3, 4)), td)
    (tg,) = torch.autograd.grad((t_out ** 2).sum(), td, create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(values.grad.numpy(), tv.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(d.grad.numpy(), td.grad.numpy(), rtol=1e-12)


def test_to_dense_is_differentiable_and_vector_and_dense_left_products(torch):
    values = engine.tensor(VALUES, requires_grad=True)
    (engine.sparse_coo_tensor(INDICES, values, (3, 4)).to_dense() * engine.tensor(np.arange(12.0).reshape(3, 4))
     ).sum().backward()
    np.testing.assert_allclose(values.grad.numpy(), np.arange(12.0).reshape(3, 4)[tuple(INDICES)])
    e, t = _pair(torch)
    vec = RNG.standard_normal(4)
    np.testing.assert_allclose((e @ engine.tensor(vec)).numpy(), (t @ torch.tensor(vec)).numpy(), rtol=1e-12)
    left = RNG.standard_normal((2, 3))
    np.testing.assert_allclose((engine.tensor(left) @ e).numpy(), (torch.tensor(left) @ t).numpy(), rtol=1e-12)


def test_sum_transpose_and_arithmetic_match_torch(torch):
    e, t = _pair(torch)
    assert engine.sparse.sum(e).item() == pytest.approx(torch.sparse.sum(t).item())
    for dim in (0, 1, (0, 1)):
        got, want = engine.sparse.sum(e, dim), torch.sparse.sum(t, dim)
        assert got.is_sparse == want.is_sparse
        np.testing.assert_allclose((got.to_dense() if got.is_sparse else got).numpy(),
                                   (want.to_dense() if want.is_sparse else want).numpy(), rtol=1e-12)
    np.testing.assert_allclose(e.t().to_dense().numpy(), t.t().to_dense().numpy())
    np.testing.assert_allclose((e * 3).to_dense().numpy(), (t * 3).to_dense().numpy())
    np.testing.assert_allclose((e + e).to_dense().numpy(), (t + t).to_dense().numpy())
    np.testing.assert_allclose((-e).to_dense().numpy(), (-t).to_dense().numpy())


def test_bad_input_is_refused_clearly():
    with pytest.raises(RuntimeError, match="size is inconsistent with indices"):
        engine.sparse_coo_tensor(INDICES, engine.tensor(VALUES), (2, 4))
    with pytest.raises(RuntimeError, match="same nnz"):
        engine.sparse_coo_tensor(INDICES, engine.tensor(VALUES[:3]), (3, 4))
    with pytest.raises(RuntimeError, match="negative index"):
        engine.sparse_coo_tensor([[0, -1]], engine.tensor([1.0, 2.0]), (3,))
    s = engine.sparse_coo_tensor(INDICES, engine.tensor(VALUES), (3, 4))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        engine.sparse.mm(s, engine.ones(3, 2, dtype=engine.float64))
    with pytest.raises(NotImplementedError, match="not supported for sparse COO tensors"):
        s.exp()
    with pytest.raises(TypeError, match=r"call \.to_dense\(\) first"):
        s.numpy()


@pytest.mark.gpu
@pytest.mark.usefixtures("cuda_backend")
def test_sparse_mm_special_and_vmap_on_cuda_match_cpu():
    def run(device):
        values = engine.tensor(VALUES, device=device, requires_grad=True)
        dense = engine.tensor(DENSE, device=device, requires_grad=True)
        s = engine.sparse_coo_tensor(INDICES, values, (3, 4))
        out = engine.sparse.mm(s.coalesce(), dense) + s.to_dense().sum()
        special = engine.special.i1e(dense) + engine.special.erfcx(dense) + engine.special.xlogy(dense, dense.abs())
        mapped = engine.func.vmap(engine.func.grad(lambda r: (r.sin() * r).sum()))(dense)
        ((out ** 2).sum() + special.sum() + mapped.sum()).backward()
        return [t.detach().cpu().numpy() for t in (out, special, mapped, values.grad, dense.grad,
                                                    engine.tensor(DENSE, device=device).to_sparse().to_dense())]

    for c, g in zip(run("cpu"), run("cuda"), strict=True):
        np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)

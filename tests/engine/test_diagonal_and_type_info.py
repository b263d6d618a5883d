"""engine.diagonal (a writable view), diag, diag_embed and finfo/iinfo, against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import engine


@pytest.mark.parametrize("offset", [0, 1, -2, 4])
@pytest.mark.parametrize(("dim1", "dim2"), [(1, 2), (2, 1), (0, 2), (-1, -3)])
def test_diagonal_values_and_gradients_match_torch(torch, offset, dim1, dim2):
    a = np.random.default_rng(0).normal(size=(2, 4, 5))
    t, e = torch.tensor(a, requires_grad=True), engine.tensor(a, requires_grad=True)
    td, ed = t.diagonal(offset, dim1, dim2), e.diagonal(offset, dim1, dim2)
    assert tuple(ed.shape) == tuple(td.shape)
    np.testing.assert_allclose(ed.detach().numpy(), td.detach().numpy())
    w = np.random.default_rng(1).normal(size=tuple(td.shape))
    (td * torch.tensor(w)).pow(2).sum().backward()
    (ed * engine.tensor(w)).pow(2).sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy())


def test_diagonal_is_a_view_that_writes_through_and_has_a_double_backward(torch):
    z = engine.zeros(3, 4)
    z.diagonal(1).fill_(-1.0)
    assert z.numpy().tolist() == [[0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, -1]]
    a = np.random.default_rng(2).normal(size=(3, 3))
    e, t = engine.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (g,) = engine.autograd.grad(engine.diagonal(e).pow(3).sum(), e, create_graph=True)
    (tg,) = torch.autograd.grad(torch.diagonal(t).pow(3).sum(), t, create_graph=True)
    g.sum().backward()
    tg.sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy())
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        engine.zeros(3).diagonal()


@pytest.mark.parametrize("k", [0, 2, -1])
def test_diag_and_diag_embed_match_torch(torch, k):
    v = np.arange(1.0, 4.0)
    m = np.random.default_rng(3).normal(size=(4, 3))
    b = np.random.default_rng(4).normal(size=(2, 3))
    np.testing.assert_array_equal(engine.diag(engine.tensor(v), k).numpy(), torch.diag(torch.tensor(v), k).numpy())
    np.testing.assert_array_equal(engine.tensor(m).diag(k).numpy(), torch.tensor(m).diag(k).numpy())
    np.testing.assert_array_equal(engine.diag_embed(engine.tensor(b), k, 0, 2).numpy(),
                                  torch.diag_embed(torch.tensor(b), k, 0, 2).numpy())


def test_finfo_and_iinfo_match_torch(torch):
    for name in ("float16", "bfloat16", "float32", "float64"):
        ours, theirs = engine.finfo(getattr(engine, name)), torch.finfo(getattr(torch, name))
        for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
            assert getattr(ours, attr) == getattr(theirs, attr), (name, attr)
    assert engine.finfo().dtype == "float32"
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        ours, theirs = engine.iinfo(getattr(engine, name)), torch.iinfo(getattr(torch, name))
        assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    with pytest.raises(TypeError, match="floating point"):
        engine.finfo(engine.int32)
    with pytest.raises(TypeError, match="not supported"):
        engine.iinfo(engine.bool)

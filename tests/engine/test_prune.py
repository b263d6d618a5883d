"""engine.nn.utils.prune against torch.nn.utils.prune: masks from the same weights, reparametrization, errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
import engine.nn as nn
from engine.nn.utils import prune


@pytest.fixture
def torch(torch):
    """The oracle with ``torch.nn.utils.prune`` loaded (it is not imported by ``import torch``)."""
    import torch.nn.utils.prune

    return torch


def _pair(torch, weight: np.ndarray):
    """An engine Conv2d-shaped or Linear-shaped holder and torch's, with the same ``weight``."""
    mine, theirs = nn.Module(), torch.nn.Module()
    mine.weight = nn.Parameter(engine.tensor(weight))
    theirs.weight = torch.nn.Parameter(torch.from_numpy(weight.copy()))
    return mine, theirs


def _masks_equal(mine, theirs, name="weight"):
    np.testing.assert_array_equal(getattr(mine, name + "_mask").numpy(), getattr(theirs, name + "_mask").numpy())
    np.testing.assert_array_equal(getattr(mine, name).detach().numpy(), getattr(theirs, name).detach().numpy())


WEIGHTS = {
    "distinct": np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32),
    # many equal magnitudes: which of the tied entries is pruned is decided by topk's tie order
    "ties": np.array([[1, -1, 2, 1, -2], [0.5, -0.5, 1, 2, 1], [1, 1, -1, 0.5, 2]], dtype=np.float32),
    "conv": np.random.default_rng(1).standard_normal((4, 3, 2, 2)).astype(np.float32),
    # big enough (k * 64 <= n) for PyTorch's partial-sort path, with ties everywhere
    "large_ties": np.random.default_rng(6).integers(-3, 4, (40, 50)).astype(np.float32),
}


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("amount", [0, 3, 12, 0.3, 0.5, 1.0])
def test_l1_unstructured_mask_matches_torch(torch, weights, amount):
    mine, theirs = _pair(torch, WEIGHTS[weights])
    prune.l1_unstructured(mine, "weight", amount=amount)
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", amount=amount)
    _masks_equal(mine, theirs)


@pytest.mark.parametrize("weights", ["distinct", "conv", "tied_rows"])
@pytest.mark.parametrize(("amount", "n", "dim"), [(2, 2, 0), (0.5, 1, -1), (1, float("inf"), 1), (0.34, 2, 0)])
def test_ln_structured_mask_matches_torch(torch, weights, amount, n, dim):
    weight = np.ones((6, 4), np.float32) if weights == "tied_rows" else WEIGHTS[weights]
    mine, theirs = _pair(torch, weight)
    prune.ln_structured(mine, "weight", amount=amount, n=n, dim=dim)
    torch.nn.utils.prune.ln_structured(theirs, "weight", amount=amount, n=n, dim=dim)
    _masks_equal(mine, theirs)


def test_iterative_pruning_builds_a_container_as_torch(torch):
    mine, theirs = _pair(torch, WEIGHTS["conv"])
    for lib, module in ((prune, mine), (torch.nn.utils.prune, theirs)):
        lib.ln_structured(module, "weight", amount=1, n=2, dim=0)
        lib.l1_unstructured(module, "weight", amount=0.25)
        lib.ln_structured(module, "weight", amount=1, n=1, dim=1)
    _masks_equal(mine, theirs)
    (hook,) = mine._forward_pre_hooks.values()
    assert isinstance(hook, prune.PruningContainer)
    assert [type(m).__name__ for m in hook] == ["LnStructured", "L1Unstructured", "LnStructured"]


def test_global_unstructured_and_custom_from_mask_match_torch(torch):
    a = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    b = np.random.default_rng(3).standard_normal((5, 2)).astype(np.float32) * 0.5
    m1, t1 = _pair(torch, a)
    m2, t2 = _pair(torch, b)
    prune.global_unstructured([(m1, "weight"), (m2, "weight")], pruning_method=prune.L1Unstructured, amount=9)
    torch.nn.utils.prune.global_unstructured([(t1, "weight"), (t2, "weight")],
                                             pruning_method=torch.nn.utils.prune.L1Unstructured, amount=9)
    _masks_equal(m1, t1)
    _masks_equal(m2, t2)
    mask = (np.arange(12).reshape(4, 3) % 2).astype(np.float32)
    prune.custom_from_mask(m1, "weight", mask=engine.tensor(mask))
    torch.nn.utils.prune.custom_from_mask(t1, "weight", mask=torch.from_numpy(mask))
    _masks_equal(m1, t1)
    with pytest.raises(TypeError, match='Only "unstructured" PRUNING_TYPE'):
        prune.global_unstructured([(m2, "weight")], pruning_method=prune.RandomStructured, amount=1)


def test_importance_scores_decide_instead_of_the_weights(torch):
    mine, theirs = _pair(torch, WEIGHTS["distinct"])
    scores = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    prune.l1_unstructured(mine, "weight", amount=7, importance_scores=engine.tensor(scores))
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", amount=7, importance_scores=torch.from_numpy(scores))
    _masks_equal(mine, theirs)


def test_reparametrization_state_dict_forward_and_remove(torch):
    layer, twin = nn.Linear(5, 6), torch.nn.Linear(5, 6)
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.weight.detach().numpy().copy()))
        twin.bias.copy_(torch.from_numpy(layer.bias.detach().numpy().copy()))
    prune.l1_unstructured(layer, "weight", amount=0.4)
    torch.nn.utils.prune.l1_unstructured(twin, "weight", amount=0.4)
    assert list(layer.state_dict()) == list(twin.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in twin.named_parameters()]
    assert [n for n, _ in layer.named_buffers()] == ["weight_mask"]
    assert prune.is_pruned(layer) and not prune.is_pruned(nn.Linear(2, 2))
    x = np.random.default_rng(5).standard_normal((3, 5)).astype(np.float32)
    layer(engine.tensor(x)).sum().backward()
    twin(torch.from_numpy(x)).sum().backward()
    np.testing.assert_allclose(layer.weight_orig.grad.numpy(), twin.weight_orig.grad.numpy(), rtol=1e-6)
    assert (layer.weight_orig.grad.numpy()[layer.weight_mask.numpy() == 0] == 0).all()
    with engine.no_grad():
        layer.weight_orig.add_(1.0)  # the hook recomputes weight from weight_orig on the next forward
    layer(engine.tensor(x))
    np.testing.assert_array_equal(layer.weight.detach().numpy(),
                                  (layer.weight_orig * layer.weight_mask).detach().numpy())
    prune.remove(layer, "weight")
    assert list(layer.state_dict()) == ["bias", "weight"]
    assert isinstance(layer.weight, nn.Parameter) and not prune.is_pruned(layer)
    assert (layer.weight.detach().numpy() == 0).sum() == 12
    with pytest.raises(ValueError, match="has to be pruned before pruning can be removed"):
        prune.remove(layer, "weight")


def test_random_methods_prune_the_right_counts():
    mine = nn.Module()
    mine.weight = nn.Parameter(engine.randn(6, 5))
    prune.random_unstructured(mine, "weight", amount=0.3)  # round(9.0) = 9 entries
    assert int((mine.weight_mask.numpy() == 0).sum()) == 9
    prune.random_unstructured(mine, "weight", amount=5)  # 5 more among the 21 left
    assert int((mine.weight_mask.numpy() == 0).sum()) == 14
    other = nn.Module()
    other.weight = nn.Parameter(engine.randn(6, 5))
    prune.random_structured(other, "weight", amount=2, dim=0)
    rows = other.weight_mask.numpy().sum(axis=1)
    assert sorted(rows.tolist()) == [0, 0, 5, 5, 5, 5]
    prune.identity(other, "weight")
    assert sorted(other.weight_mask.numpy().sum(axis=1).tolist()) == [0, 0, 5, 5, 5, 5]


def test_fraction_rounds_half_to_even_as_torch(torch):
    weight = np.arange(1, 11, dtype=np.float32).reshape(2, 5)  # 10 entries: 0.25 -> round(2.5) = 2
    mine, theirs = _pair(torch, weight)
    prune.l1_unstructured(mine, "weight", amount=0.25)
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", amount=0.25)
    _masks_equal(mine, theirs)
    assert int((mine.weight_mask.numpy() == 0).sum()) == 2


@pytest.mark.parametrize(("amount", "error", "match"), [
    ("0.5", TypeError, "Invalid type for amount: 0.5. Must be int or float."),
    (-1, ValueError, r"amount=-1 should either be a float in the range \[0, 1\] or a non-negative integer"),
    (1.5, ValueError, r"amount=1.5 should either be a float in the range \[0, 1\]"),
    (31, ValueError, "amount=31 should be smaller than the number of parameters to prune=30"),
])
def test_bad_amount_is_refused_as_torch_and_changes_nothing(torch, amount, error, match):
    mine, theirs = _pair(torch, WEIGHTS["distinct"])
    with pytest.raises(error, match=match):
        prune.l1_unstructured(mine, "weight", amount=amount)
    with pytest.raises(error, match=match):
        torch.nn.utils.prune.l1_unstructured(theirs, "weight", amount=amount)
    assert list(mine.state_dict()) == ["weight"] and not prune.is_pruned(mine)


def test_structured_pruning_refuses_vectors_and_bad_dims():
    holder = nn.Module()
    holder.weight = nn.Parameter(engine.randn(5))
    with pytest.raises(ValueError, match="only be applied to multidimensional tensors"):
        prune.ln_structured(holder, "weight", amount=1, n=2, dim=0)
    holder.weight = nn.Parameter(engine.randn(3, 4))
    with pytest.raises(IndexError, match="Invalid index 2"):
        prune.random_structured(holder, "weight", amount=1, dim=2)
    assert list(holder.state_dict()) == ["weight"]


def test_topk_tie_order_replays_torch(torch):
    from engine.nn.utils._topk_order import topk_indices

    rng = np.random.default_rng(7)
    for n in (2, 5, 16, 17, 100, 640, 2000):
        for _ in range(20):
            values = rng.integers(0, 3, n).astype(np.float32)
            k = int(rng.integers(1, n + 1)) if rng.random() < 0.5 else max(1, n // 64)
            for largest in (False, True):
                expected = torch.topk(torch.from_numpy(values), k, largest=largest).indices.numpy()
                assert set(topk_indices(values, k, largest).tolist()) == set(expected.tolist())

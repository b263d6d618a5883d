"""engine.nn.utils.parametrize / parametrizations and the hook-based norms, against PyTorch's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import engine
from engine import nn
from engine.nn.utils import parametrizations as P
from engine.nn.utils import parametrize


def _np(t):
    return t.detach().cpu().numpy()


def _linear_pair(torch, n_in=3, n_out=4):
    torch.manual_seed(0)
    theirs = torch.nn.Linear(n_in, n_out).double()
    ours = nn.Linear(n_in, n_out).double()
    ours.load_state_dict({k: engine.tensor(_np(v)) for k, v in theirs.state_dict().items()})
    return theirs, ours


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)

    def right_inverse(self, A):
        return A.triu()


def test_a_registered_parametrization_computes_the_tensor_and_keeps_the_original_trainable():
    layer = nn.Linear(3, 3)
    weight = layer.weight
    parametrize.register_parametrization(layer, "weight", Symmetric())
    assert type(layer).__name__ == "ParametrizedLinear" and type(nn.Linear(2, 2)) is nn.Linear
    assert parametrize.is_parametrized(layer, "weight") and not parametrize.is_parametrized(layer, "bias")
    assert layer.parametrizations.weight.original is weight  # the same Parameter: optimizers keep it
    np.testing.assert_allclose(_np(layer.weight), _np(layer.weight).T)
    assert sorted(layer.state_dict()) == ["bias", "parametrizations.weight.original"]
    layer(engine.randn(2, 3)).sum().backward()
    assert weight.grad is not None
    target = engine.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]])
    layer.weight = target  # right_inverse sets the original
    np.testing.assert_allclose(_np(layer.weight), _np(target))
    with parametrize.cached():
        assert layer.weight is layer.weight
    parametrize.remove_parametrizations(layer, "weight")
    assert type(layer) is nn.Linear and isinstance(layer.weight, nn.Parameter)
    np.testing.assert_allclose(_np(layer.weight), _np(target))


def test_parametrizations_that_change_the_shape_are_refused_unless_unsafe():
    class Flatten(nn.Module):
        def forward(self, X):
            return X.reshape(-1)

    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(nn.Linear(2, 2), "weight", Flatten())
    with pytest.raises(ValueError, match="does not have a parameter, a buffer"):
        parametrize.register_parametrization(nn.Linear(2, 2), "nope", Symmetric())
    with pytest.raises(ValueError, match="does not have a parametrization"):
        parametrize.remove_parametrizations(nn.Linear(2, 2), "weight")


def test_weight_norm_matches_torch_in_values_keys_and_gradients(torch):
    theirs, ours = _linear_pair(torch)
    torch.nn.utils.parametrizations.weight_norm(theirs)
    P.weight_norm(ours)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(_np(ours.state_dict()[key]), _np(value))
    x = np.random.default_rng(0).normal(size=(5, 3))
    theirs(torch.tensor(x)).pow(2).sum().backward()
    ours(engine.tensor(x)).pow(2).sum().backward()
    for (key, tp), (_, ep) in zip(theirs.named_parameters(), ours.named_parameters(), strict=True):
        np.testing.assert_allclose(_np(ep.grad), _np(tp.grad), atol=1e-12, err_msg=key)


def test_spectral_norm_matches_torch_given_the_same_power_iteration_vectors(torch):
    theirs, ours = _linear_pair(torch, 5, 4)
    torch.nn.utils.parametrizations.spectral_norm(theirs)
    P.spectral_norm(ours)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict({k: engine.tensor(_np(v)) for k, v in theirs.state_dict().items()})
    for train in (True, False):
        theirs.train(train)
        ours.train(train)
        np.testing.assert_allclose(_np(ours.weight), _np(theirs.weight), atol=1e-12)
    sigma = np.linalg.svd(_np(ours.weight), compute_uv=False)[0]
    assert abs(sigma - 1.0) < 1e-3


@pytest.mark.parametrize(("shape", "orthogonal_map"), [((4, 4), None), ((6, 3), None), ((3, 6), "cayley"),
                                                        ((5, 3), "matrix_exp"), ((4, 4), "householder")])
def test_orthogonal_stays_orthogonal_through_training(shape, orthogonal_map):
    layer = P.orthogonal(nn.Linear(shape[1], shape[0]).double(), orthogonal_map=orthogonal_map)
    assert sorted(layer.state_dict()) == ["bias", "parametrizations.weight.0.base", "parametrizations.weight.original"]
    opt = engine.optim.SGD(layer.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(engine.randn(8, shape[1], dtype=engine.float64)).pow(2).sum().backward()
        opt.step()
    W = _np(layer.weight)
    gram = W.T @ W if shape[0] >= shape[1] else W @ W.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-10)


def test_hook_based_weight_and_spectral_norm_match_torch(torch):
    theirs, ours = _linear_pair(torch, 5, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(theirs)
    with pytest.warns(FutureWarning, match="deprecated"):
        engine.nn.utils.weight_norm(ours)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["bias", "weight_g", "weight_v"]
    x = np.random.default_rng(0).normal(size=(2, 5))
    np.testing.assert_allclose(_np(ours(engine.tensor(x))), _np(theirs(torch.tensor(x))), atol=1e-12)
    engine.nn.utils.remove_weight_norm(ours)
    assert sorted(ours.state_dict()) == ["bias", "weight"]
    with pytest.raises(ValueError, match="not found"):
        engine.nn.utils.remove_weight_norm(ours)

    theirs, ours = _linear_pair(torch, 5, 4)
    torch.nn.utils.spectral_norm(theirs)
    engine.nn.utils.spectral_norm(ours)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    ours.load_state_dict({k: engine.tensor(_np(v)) for k, v in theirs.state_dict().items()})
    np.testing.assert_allclose(_np(ours(engine.tensor(x))), _np(theirs(torch.tensor(x))), atol=1e-12)
    np.testing.assert_allclose(_np(ours.weight_u), _np(theirs.weight_u), atol=1e-12)
    engine.nn.utils.remove_spectral_norm(ours)
    assert sorted(ours.state_dict()) == ["bias", "weight"]

"""``ExponentialFamily``: the base of exponential-family distributions, entropy by the Bregman divergence."""

from __future__ import annotations

import engine
from engine.distributions.distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """Base of densities exp(<t(x), theta> - F(theta) + k(x)): entropy from the log-normaliser F by autograd."""

    @property
    def _natural_params(self):
        """Abstract method for natural parameters."""
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        """Abstract method for log normalizer function."""
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        """Abstract method for expected carrier measure, which is required for computing entropy."""
        raise NotImplementedError

    def entropy(self):
        """Method to compute the entropy using Bregman divergence of the log normalizer."""
        result = -self._mean_carrier_measure
        nparams = [p.detach().requires_grad_() for p in self._natural_params]
        lg_normal = self._log_normalizer(*nparams)
        gradients = engine.autograd.grad(lg_normal.sum(), nparams, create_graph=True)
        result += lg_normal
        for np, g in zip(nparams, gradients, strict=False):
            result -= (np * g).reshape((*self._batch_shape, -1)).sum(-1)
        return result

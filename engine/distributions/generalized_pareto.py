"""``GeneralizedPareto``: the peaks-over-threshold law with location ``loc``, ``scale`` and shape ``concentration``."""

from __future__ import annotations

import math

import engine
from engine.distributions import constraints
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.distributions.normal import _expand_params, _uniform
from engine.distributions.utils import broadcast_all

__all__ = ["GeneralizedPareto"]


class GeneralizedPareto(Distribution):
    """The generalised Pareto distribution; ``concentration`` 0 is the exponential, < 0 has a bounded support."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return _expand_params(self, GeneralizedPareto, batch_shape, ("loc", "scale", "concentration"), _instance)

    def _safe_conc(self):  # the shape where it is not 0 (the exponential case), else 1
        return engine.where(self.concentration == 0, engine.ones_like(self.concentration), self.concentration)

    def rsample(self, sample_shape=_EMPTY_SIZE):
        u = _uniform(self._extended_shape(sample_shape), self.loc)
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        c = self._safe_conc()
        y = 1 / c + 1
        general = engine.where(y == 0, y, y * engine.log1p(c * z))
        return -self.scale.log() - engine.where(self.concentration == 0, z, general)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        c = self._safe_conc()
        return engine.where(self.concentration == 0, -z, -engine.log1p(c * z) / c)

    def log_cdf(self, value):
        return engine.log1p(-engine.exp(self.log_survival_function(value)))

    def cdf(self, value):
        return engine.exp(self.log_cdf(value))

    def icdf(self, value):
        c = self._safe_conc()
        logu = engine.log1p(-value)
        general = self.loc + self.scale / c * engine.expm1(-c * logu)
        return engine.where(self.concentration == 0, self.loc - self.scale * logu, general)

    @property
    def mean(self):
        valid = self.concentration < 1
        c = engine.where(valid, self.concentration, 0.5)
        return engine.where(valid, self.loc + self.scale / (1 - c), math.nan)

    @property
    def variance(self):
        valid = self.concentration < 0.5
        c = engine.where(valid, self.concentration, 0.25)
        return engine.where(valid, self.scale ** 2 / ((1 - c) ** 2 * (1 - 2 * c)), math.nan)

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        return (self.scale.log() + self.concentration + 1).broadcast_to(self._batch_shape)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        lower = self.loc
        upper = engine.where(self.concentration < 0, lower - self.scale / self.concentration, math.inf)
        return constraints.interval(lower, upper)

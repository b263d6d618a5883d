"""``StudentT``: Student's t distribution with ``df`` degrees of freedom, location and scale."""

from __future__ import annotations

import math
from numbers import Number

import engine
from engine.distributions import constraints
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.distributions.gamma import Chi2
from engine.distributions.normal import _expand_params
from engine.distributions.utils import _standard_normal, broadcast_all
from engine.tensor import Size

__all__ = ["StudentT"]


class StudentT(Distribution):
    """Student's t with degrees of freedom ``df``, location ``loc`` and scale ``scale``."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df)
        batch_shape = Size() if all(isinstance(v, Number) for v in (df, loc, scale)) else self.df.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = _expand_params(self, StudentT, batch_shape, ("df", "loc", "scale"), _instance)
        new._chi2 = self._chi2.expand(batch_shape)
        return new

    @property
    def mean(self):
        m = self.loc.clone()
        return engine.where(self.df <= 1, float("nan"), m)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        var = self.scale.pow(2) * df / (df - 2)
        var = engine.where(df <= 2, float("inf"), var)
        return engine.where(df <= 1, float("nan"), var)

    def rsample(self, sample_shape=_EMPTY_SIZE):
        # X ~ Normal(0, 1), Z ~ Chi2(df): Y = X / sqrt(Z / df) ~ StudentT(df)
        shape = self._extended_shape(sample_shape)
        x = _standard_normal(shape, dtype=self.df.dtype, device=self.df.device)
        z = self._chi2.rsample(sample_shape)
        return self.loc + self.scale * x * engine.rsqrt(z / self.df)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (value - self.loc) / self.scale
        z = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi) + engine.lgamma(0.5 * self.df)
             - engine.lgamma(0.5 * (self.df + 1.0)))
        return -0.5 * (self.df + 1.0) * engine.log1p(y ** 2.0 / self.df) - z

    def entropy(self):
        lbeta = engine.lgamma(0.5 * self.df) + math.lgamma(0.5) - engine.lgamma(0.5 * (self.df + 1))
        return (self.scale.log() + 0.5 * (self.df + 1) * (engine.digamma(0.5 * (self.df + 1))
                                                          - engine.digamma(0.5 * self.df))
                + 0.5 * self.df.log() + lbeta)

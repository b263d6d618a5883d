"""``FisherSnedecor``: the F distribution, (X1 / df1) / (X2 / df2) for independent chi-squared X1, X2."""

from __future__ import annotations

from numbers import Number

import engine
from engine.distributions import constraints
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.distributions.gamma import Gamma
from engine.distributions.normal import _expand_params
from engine.distributions.utils import _eps, broadcast_all
from engine.tensor import Size

__all__ = ["FisherSnedecor"]


class FisherSnedecor(Distribution):
    """The Fisher-Snedecor F distribution with degrees of freedom ``df1`` and ``df2``."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        self._gamma1 = Gamma(self.df1 * 0.5, self.df1)
        self._gamma2 = Gamma(self.df2 * 0.5, self.df2)
        batch_shape = Size() if isinstance(df1, Number) and isinstance(df2, Number) else self.df1.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = _expand_params(self, FisherSnedecor, batch_shape, ("df1", "df2"), _instance)
        new._gamma1 = self._gamma1.expand(batch_shape)
        new._gamma2 = self._gamma2.expand(batch_shape)
        return new

    @property
    def mean(self):
        df2 = self.df2.clone()
        return engine.where(df2 <= 2, float("nan"), df2 / (df2 - 2))

    @property
    def mode(self):
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return engine.where(self.df1 <= 2, float("nan"), mode)

    @property
    def variance(self):
        df2 = self.df2
        var = 2 * df2.pow(2) * (self.df1 + df2 - 2) / (self.df1 * (df2 - 2).pow(2) * (df2 - 4))
        return engine.where(df2 <= 4, float("nan"), var)

    def rsample(self, sample_shape=_EMPTY_SIZE):
        # Y = X1 / X2 with X1 ~ Gamma(df1 / 2, df1) and X2 ~ Gamma(df2 / 2, df2), clamped away from 0 and inf
        x1 = self._gamma1.rsample(sample_shape)
        x2 = self._gamma2.rsample(sample_shape)
        tiny = float(engine.finfo(x2.dtype).tiny)
        x2 = x2.clamp(min=tiny)
        y = x1 / x2
        return y.clamp(min=tiny, max=1 / _eps(y.dtype) ** 8)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        ct1 = self.df1 * 0.5
        ct2 = self.df2 * 0.5
        ct3 = self.df1 / self.df2
        t1 = (ct1 + ct2).lgamma() - ct1.lgamma() - ct2.lgamma()
        t2 = ct1 * ct3.log() + (ct1 - 1) * engine.log(value)
        t3 = (ct1 + ct2) * engine.log1p(ct3 * value)
        return t1 + t2 - t3

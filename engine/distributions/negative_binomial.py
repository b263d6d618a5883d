"""``NegativeBinomial``: failures before ``total_count`` successes, a Gamma-Poisson mixture."""

from __future__ import annotations

import engine
from engine.distributions import constraints
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.distributions.gamma import Gamma, Poisson
from engine.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits
from engine.tensor import Size

__all__ = ["NegativeBinomial"]


class NegativeBinomial(Distribution):
    """Failures before ``total_count`` successes of Bernoulli trials whose success probability is 1 - ``probs``."""

    arg_constraints = {"total_count": constraints.greater_than_eq(0), "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.type_as(self.probs)
            self._param = self.probs
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.type_as(self.logits)
            self._param = self.logits
        super().__init__(self._param.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(NegativeBinomial, _instance)
        batch_shape = Size(batch_shape)
        new.total_count = self.total_count.expand(batch_shape)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, getattr(self, name).expand(batch_shape))
                new._param = getattr(new, name)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def mean(self):
        return self.total_count * engine.exp(self.logits)

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / engine.sigmoid(-self.logits)

    @lazy_property
    def _gamma(self):
        return Gamma(concentration=self.total_count, rate=engine.exp(-self.logits), validate_args=False)

    def sample(self, sample_shape=_EMPTY_SIZE):
        with engine.no_grad():
            rate = self._gamma.sample(sample_shape)
            return Poisson(rate, validate_args=False).sample()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_unnormalized_prob = (self.total_count * engine.nn.functional.logsigmoid(-self.logits)
                                 + value * engine.nn.functional.logsigmoid(self.logits))
        log_normalization = -engine.lgamma(self.total_count + value) + engine.lgamma(1.0 + value) \
            + engine.lgamma(self.total_count)
        # the normalisation is 0 where total_count + value == 0 (lgamma(0) is inf)
        log_normalization = engine.where(self.total_count + value == 0.0, 0.0, log_normalization)
        return log_unnormalized_prob - log_normalization

"""``Geometric``: the number of failures before the first success in Bernoulli(probs) trials."""

from __future__ import annotations

from numbers import Number

import engine
from engine.distributions import constraints
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits
from engine.tensor import Size

__all__ = ["Geometric"]


class Geometric(Distribution):
    """P(X = k) = (1 - p) ** k * p for k = 0, 1, 2 ..."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
        else:
            (self.logits,) = broadcast_all(logits)
        param = probs if probs is not None else logits
        batch_shape = Size() if isinstance(param, Number) else (self.probs if probs is not None else self.logits).size()
        super().__init__(batch_shape, validate_args=validate_args)
        if self._validate_args and probs is not None and not bool((self.probs > 0).all()):
            raise ValueError(f"Expected parameter probs of distribution {self!r} to be positive but found invalid "
                             f"values:\n{self.probs}")

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Geometric, _instance)
        batch_shape = Size(batch_shape)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, getattr(self, name).expand(batch_shape))
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
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return engine.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=_EMPTY_SIZE):
        shape = self._extended_shape(sample_shape)
        tiny = float(engine.finfo(self.probs.dtype).tiny)
        with engine.no_grad():
            u = engine.rand(tuple(shape), dtype=self.probs.dtype, device=self.probs.device).clamp(min=tiny)
            return (u.log() / (-self.probs).log1p()).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        probs = probs.clone()
        probs = engine.where((probs == 1) & (value == 0), 0.0, probs)  # 0 * log1p(-1) = 0
        return value * (-probs).log1p() + self.probs.log()

    def entropy(self):
        return engine.nn.functional.binary_cross_entropy_with_logits(self.logits, self.probs,
                                                                      reduction="none") / self.probs



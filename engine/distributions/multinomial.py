"""``Multinomial``: counts of ``total_count`` draws from a categorical distribution."""

from __future__ import annotations

import engine
from engine.distributions import constraints
from engine.distributions.binomial import Binomial
from engine.distributions.categorical import Categorical
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.tensor import Size

__all__ = ["Multinomial"]


class Multinomial(Distribution):
    """Counts over K categories of ``total_count`` independent categorical draws with ``probs`` (or ``logits``)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Multinomial, _instance)
        batch_shape = Size(batch_shape)
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        new._binomial = Binomial(total_count=self.total_count, probs=new.probs)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def param_shape(self) -> Size:
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=_EMPTY_SIZE):
        sample_shape = Size(sample_shape)
        with engine.no_grad():
            draws = self._categorical.sample(Size((self.total_count, *tuple(sample_shape))))
            k = self._event_shape[0]
            one_hot = engine.nn.functional.one_hot(draws, num_classes=k).to(self.probs.dtype)
            return one_hot.sum(0)

    def entropy(self):
        n = engine.tensor(float(self.total_count), dtype=self.probs.dtype, device=self.probs.device)
        cat_entropy = self._categorical.entropy()
        support = self._binomial.enumerate_support(expand=False)[1:]  # counts 1..n of each category
        binomial_probs = self._binomial.log_prob(support).exp()
        weights = engine.lgamma(support + 1)
        return n * cat_entropy - engine.lgamma(n + 1) + (binomial_probs * weights).sum([0, -1])

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits = self.logits.clone()
        logits, value = engine.broadcast_tensors(logits, value)
        log_factorial_n = engine.lgamma(value.sum(-1) + 1)
        log_factorial_xs = engine.lgamma(value + 1).sum(-1)
        logits = engine.where((value == 0) & (logits == -float("inf")), 0.0, logits)
        log_powers = (logits * value).sum(-1)
        return log_factorial_n - log_factorial_xs + log_powers

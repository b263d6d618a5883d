"""``RelaxedBernoulli`` and its logit ``LogitRelaxedBernoulli``: the binary Concrete distribution
(Maddison, Mnih & Teh, 2017), a Bernoulli draw made differentiable by a ``temperature``."""

from __future__ import annotations

import engine
from engine.distributions import constraints
from engine.distributions._relaxed import _BinaryParameterised, _RelaxedView
from engine.distributions.distribution import _EMPTY_SIZE
from engine.distributions.transforms import SigmoidTransform
from engine.distributions.utils import broadcast_all, clamp_probs

__all__ = ["LogitRelaxedBernoulli", "RelaxedBernoulli"]


class LogitRelaxedBernoulli(_BinaryParameterised):
    """The logit of a ``RelaxedBernoulli`` draw: ``(logits + logistic noise) / temperature``.

    Args:
        temperature: a positive tensor; the lower, the closer the draws' sigmoid is to 0 or 1.
        probs, logits: the Bernoulli's probability of 1, or its log-odds (exactly one of them).

    Example:
        >>> LogitRelaxedBernoulli(engine.tensor(0.5), probs=engine.tensor([0.1, 0.9])).rsample((4,)).shape
        engine.Size([4, 2])
    """

    support = constraints.real

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self.temperature = temperature
        super().__init__(probs, logits, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogitRelaxedBernoulli, _instance)
        new.temperature = self.temperature
        return super().expand(batch_shape, _instance=new)

    def rsample(self, sample_shape=_EMPTY_SIZE):
        shape = self._extended_shape(sample_shape)
        probs = clamp_probs(self.probs.expand(shape))
        u = clamp_probs(engine.rand(shape, dtype=probs.dtype, device=probs.device))
        logistic = u.log() - (-u).log1p()
        return (logistic + probs.log() - (-probs).log1p()) / self.temperature

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        # the logistic density with location logits / temperature and scale 1 / temperature
        z = logits - value * self.temperature
        return self.temperature.log() + z - 2 * z.exp().log1p()


class RelaxedBernoulli(_RelaxedView):
    """A draw in (0, 1) that tends to a Bernoulli(``probs``) one as ``temperature`` goes to 0.

    Args:
        temperature: a positive tensor.
        probs, logits: the Bernoulli's probability of 1, or its log-odds (exactly one of them).

    Example:
        >>> d = RelaxedBernoulli(engine.tensor(0.1), probs=engine.tensor([0.2, 0.8]))
        >>> d.rsample().shape, d.log_prob(engine.tensor([0.3, 0.6])).shape
        (engine.Size([2]), engine.Size([2]))
    """

    arg_constraints = LogitRelaxedBernoulli.arg_constraints
    support = constraints.unit_interval
    base_dist: LogitRelaxedBernoulli

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        # NOTE: the base checks its parameters by the global default, whatever validate_args says
        super().__init__(LogitRelaxedBernoulli(temperature, probs, logits), SigmoidTransform(),
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(RelaxedBernoulli, _instance)
        return super().expand(batch_shape, _instance=new)

"""``RelaxedOneHotCategorical`` and its log ``ExpRelaxedCategorical``: the Concrete / Gumbel-softmax
distribution (Maddison, Mnih & Teh, 2017; Jang, Gu & Poole, 2017), a one-hot draw made differentiable by a
``temperature``."""

from __future__ import annotations

import engine
from engine.distributions import constraints
from engine.distributions._relaxed import _RelaxedView
from engine.distributions.categorical import Categorical
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.distributions.transforms import ExpTransform
from engine.distributions.utils import broadcast_all, clamp_probs
from engine.tensor import Size

__all__ = ["ExpRelaxedCategorical", "RelaxedOneHotCategorical"]


class ExpRelaxedCategorical(Distribution):
    """The log of a ``RelaxedOneHotCategorical`` draw: ``(logits + Gumbel noise) / temperature``, log-normalised.

    Args:
        temperature: a positive tensor.
        probs, logits: the categorical's (unnormalised) probabilities or log-probabilities along the last
            dimension (exactly one of them), as ``Categorical`` takes them.

    Example:
        >>> ExpRelaxedCategorical(engine.tensor(0.5), probs=engine.tensor([0.2, 0.8])).rsample((3,)).shape
        engine.Size([3, 2])
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector  # NOTE: the draws lie on the part of it whose logsumexp is 0
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        self.temperature = temperature
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ExpRelaxedCategorical, _instance)
        batch_shape = Size(batch_shape)
        new.temperature = self.temperature
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def param_shape(self) -> Size:
        return self._categorical.param_shape

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    def rsample(self, sample_shape=_EMPTY_SIZE):
        logits = self.logits
        u = clamp_probs(engine.rand(self._extended_shape(sample_shape), dtype=logits.dtype, device=logits.device))
        gumbel = -((-(u.log())).log())
        scores = (logits + gumbel) / self.temperature
        return scores - scores.logsumexp(dim=-1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self._categorical._num_events
        logits, value = broadcast_all(self.logits, value)
        # the density's constant: log((k - 1)! * temperature ** (k - 1))
        log_scale = engine.full_like(self.temperature, float(k)).lgamma() + self.temperature.log() * (k - 1)
        scores = logits - value * self.temperature
        return (scores - scores.logsumexp(dim=-1, keepdim=True)).sum(-1) + log_scale


class RelaxedOneHotCategorical(_RelaxedView):
    """A draw on the simplex that tends to a one-hot categorical one as ``temperature`` goes to 0.

    Args:
        temperature: a positive tensor.
        probs, logits: as ``Categorical`` takes them (exactly one of them).

    Example:
        >>> d = RelaxedOneHotCategorical(engine.tensor(0.3), probs=engine.tensor([0.2, 0.3, 0.5]))
        >>> d.rsample((2,)).sum(-1)  # each draw sums to 1
        tensor([1.0000, 1.0000])
    """

    arg_constraints = ExpRelaxedCategorical.arg_constraints
    support = constraints.simplex
    base_dist: ExpRelaxedCategorical

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        super().__init__(ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args), ExpTransform(),
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(RelaxedOneHotCategorical, _instance)
        return super().expand(batch_shape, _instance=new)

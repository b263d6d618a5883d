"""What the Bernoulli and categorical relaxations share: one binary ``probs``/``logits`` parameter
(``LogitRelaxedBernoulli``, ``ContinuousBernoulli``) and the view of a relaxed base through a transform
(``RelaxedBernoulli``, ``RelaxedOneHotCategorical``)."""

from __future__ import annotations

from numbers import Number

from engine.distributions import constraints
from engine.distributions.distribution import Distribution
from engine.distributions.transformed_distribution import TransformedDistribution
from engine.distributions.utils import (
    broadcast_all,
    clamp_probs,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
)
from engine.tensor import Size


class _BinaryParameterised(Distribution):
    """A distribution of one binary parameter, given as ``probs`` or as ``logits`` (not both).

    The given one is stored broadcast to a tensor (its shape is the batch shape; a Python number gives
    an empty one) and the other is derived on first use. ``_clamps_probs`` keeps ``probs`` inside
    ``[eps, 1 - eps]``, both as given (checked first) and as derived from ``logits``.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    _clamps_probs = False

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        name, given = ("probs", probs) if probs is not None else ("logits", logits)
        (param,) = broadcast_all(given)
        if name == "probs" and self._clamps_probs:
            # NOTE: checked before the clamp, after which any value would pass
            if validate_args is not None and not self.arg_constraints["probs"].check(param).all():
                raise ValueError("The parameter probs has invalid values")
            param = clamp_probs(param)
        setattr(self, name, param)
        self._param = param
        super().__init__(Size() if isinstance(given, Number) else param.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        """Carry the parameters computed so far to ``_instance`` (made by the subclass), expanded."""
        new = self._get_checked_instance(type(self), _instance)
        batch_shape = Size(batch_shape)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(batch_shape))
                new._param = new.__dict__[name]
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        probs = logits_to_probs(self.logits, is_binary=True)
        return clamp_probs(probs) if self._clamps_probs else probs

    @property
    def param_shape(self) -> Size:
        return self._param.size()


class _RelaxedView(TransformedDistribution):
    """A relaxation seen through a transform of its base, whose ``temperature``, ``probs`` and ``logits`` it shows."""

    has_rsample = True

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs

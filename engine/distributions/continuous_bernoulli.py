"""``ContinuousBernoulli``: the continuous relaxation of a Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham, 2019)."""

from __future__ import annotations

import math

import engine
from engine.distributions import constraints
from engine.distributions._relaxed import _BinaryParameterised
from engine.distributions.distribution import _EMPTY_SIZE
from engine.distributions.exp_family import ExponentialFamily
from engine.distributions.utils import broadcast_all
from engine.nn.functional import binary_cross_entropy_with_logits

__all__ = ["ContinuousBernoulli"]


def _split_near(x, lo: float, hi: float):
    """Where ``x`` lies outside ``(lo, hi]`` (the closed forms hold there), and ``x`` with the entries inside
    moved to ``lo`` so that the closed forms, computed everywhere, stay finite."""
    closed_form = engine.maximum(engine.le(x, lo), engine.gt(x, hi))
    return closed_form, engine.where(closed_form, x, lo)


def _log_odds_of_zero(p):
    """``log((1 - p) / p)``."""
    return engine.log1p(-p) - engine.log(p)


class ContinuousBernoulli(_BinaryParameterised, ExponentialFamily):
    """The density ``C(probs) * probs**x * (1 - probs)**(1 - x)`` on [0, 1].

    Near ``probs = 1/2`` the closed forms of the normaliser ``C`` and of the moments are 0/0; for ``probs`` in
    ``(lims[0], lims[1]]`` their Taylor series about 1/2 are used instead.

    Args:
        probs, logits: the parameter or its log-odds (exactly one of them); ``probs`` is clamped to
            ``[eps, 1 - eps]``.
        lims: the interval around 1/2 where the Taylor series are used.

    Example:
        >>> d = ContinuousBernoulli(probs=engine.tensor([0.2, 0.9]))
        >>> d.mean, d.rsample((3,)).shape
        (tensor([0.3880, 0.6699]), engine.Size([3, 2]))
    """

    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True
    _clamps_probs = True

    def __init__(self, probs=None, logits=None, lims: tuple[float, float] = (0.499, 0.501), validate_args=None):
        self._lims = lims
        super().__init__(probs, logits, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(ContinuousBernoulli, _instance)
        new._lims = self._lims
        return super().expand(batch_shape, _instance=new)

    def _cont_bern_log_norm(self):
        """``log C(probs)`` = ``log|log((1 - p) / p)| - log|1 - 2p|`` (each side of 1/2 with its own stable log)."""
        closed_form, p = _split_near(self.probs, *self._lims)
        below_half = engine.le(p, 0.5)
        p_below, p_above = engine.where(below_half, p, 0.0), engine.where(engine.ge(p, 0.5), p, 1.0)
        exact = engine.log(engine.abs(_log_odds_of_zero(p))) - engine.where(
            below_half, engine.log1p(-2.0 * p_below), engine.log(2.0 * p_above - 1.0))
        x = engine.pow(self.probs - 0.5, 2)
        return engine.where(closed_form, exact, math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x)

    @property
    def mean(self):
        closed_form, p = _split_near(self.probs, *self._lims)
        exact = p / (2.0 * p - 1.0) + 1.0 / _log_odds_of_zero(p)
        x = self.probs - 0.5
        return engine.where(closed_form, exact, 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * engine.pow(x, 2)) * x)

    @property
    def variance(self):
        closed_form, p = _split_near(self.probs, *self._lims)
        exact = p * (p - 1.0) / engine.pow(1.0 - 2.0 * p, 2) + 1.0 / engine.pow(_log_odds_of_zero(p), 2)
        x = engine.pow(self.probs - 0.5, 2)
        return engine.where(closed_form, exact, 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x)

    @property
    def stddev(self):
        return engine.sqrt(self.variance)

    def rsample(self, sample_shape=_EMPTY_SIZE):
        probs = self.probs
        return self.icdf(engine.rand(self._extended_shape(sample_shape), dtype=probs.dtype, device=probs.device))

    def sample(self, sample_shape=_EMPTY_SIZE):
        with engine.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -binary_cross_entropy_with_logits(logits, value, reduction="none") + self._cont_bern_log_norm()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        closed_form, p = _split_near(self.probs, *self._lims)
        exact = (engine.pow(p, value) * engine.pow(1.0 - p, 1.0 - value) + p - 1.0) / (2.0 * p - 1.0)
        inside = engine.where(closed_form, exact, value)
        return engine.where(engine.le(value, 0.0), 0.0, engine.where(engine.ge(value, 1.0), 1.0, inside))

    def icdf(self, value):
        closed_form, p = _split_near(self.probs, *self._lims)
        exact = (engine.log1p(-p + value * (2.0 * p - 1.0)) - engine.log1p(-p)) / -_log_odds_of_zero(p)
        return engine.where(closed_form, exact, value)

    def entropy(self):
        log_q = engine.log1p(-self.probs)
        return self.mean * (log_q - engine.log(self.probs)) - self._cont_bern_log_norm() - log_q

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        """``log C`` in terms of the natural parameter ``x`` (the logits): ``log|expm1(x) / x|``."""
        closed_form, cut = _split_near(x, self._lims[0] - 0.5, self._lims[1] - 0.5)
        exact = engine.log(engine.abs(engine.special.expm1(cut))) - engine.log(engine.abs(cut))
        return engine.where(closed_form, exact, 0.5 * x + engine.pow(x, 2) / 24.0 - engine.pow(x, 4) / 2880.0)

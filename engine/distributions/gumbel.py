"""``Gumbel``: the type-I extreme-value distribution, as -log(-log(U)) scaled and shifted."""

from __future__ import annotations

import math
from numbers import Number

import engine
from engine.distributions import constraints
from engine.distributions.normal import Uniform
from engine.distributions.transformed_distribution import TransformedDistribution
from engine.distributions.transforms import AffineTransform, ExpTransform
from engine.distributions.utils import _eps, broadcast_all, euler_constant

__all__ = ["Gumbel"]


class Gumbel(TransformedDistribution):
    """The Gumbel distribution with location ``loc`` and scale ``scale``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        import numpy as np

        tiny = float(np.finfo(self.loc.dtype.np).tiny)
        batch_shape = self.loc.size()
        base = Uniform(engine.full(batch_shape, tiny, dtype=self.loc.dtype, device=self.loc.device),
                       engine.full(batch_shape, 1 - _eps(self.loc.dtype), dtype=self.loc.dtype,
                                   device=self.loc.device), validate_args=False)
        transforms = [ExpTransform().inv, AffineTransform(loc=0, scale=-engine.ones_like(self.scale)),
                      ExpTransform().inv, AffineTransform(loc=self.loc, scale=-self.scale)]
        super().__init__(base, transforms, validate_args=validate_args)
        if isinstance(loc, Number) and isinstance(scale, Number):
            self._batch_shape = engine.Size()

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Gumbel, _instance)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        return super().expand(batch_shape, _instance=new)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (self.loc - value) / self.scale
        return (y - y.exp()) - self.scale.log()

    @property
    def mean(self):
        return self.loc + self.scale * euler_constant

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def entropy(self):
        return self.scale.log() + (1 + euler_constant)

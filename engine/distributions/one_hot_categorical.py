"""``torch.distributions.one_hot_categorical``: ``OneHotCategorical`` and its straight-through variant."""

from __future__ import annotations

from engine.distributions.distribution import _EMPTY_SIZE
from engine.distributions.mixture import OneHotCategorical

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """``OneHotCategorical`` whose ``rsample`` passes gradients straight through to ``probs`` (Bengio et al. 2013)."""

    has_rsample = True

    def rsample(self, sample_shape=_EMPTY_SIZE):
        samples = self.sample(sample_shape)
        probs = self._categorical.probs  # cached via the lazy probs
        return samples + (probs - probs.detach())

"""``torch.distributions.binomial``: where PyTorch imports ``Binomial`` from (defined in ``engine.distributions.gamma``)."""

from engine.distributions.gamma import Binomial

__all__ = ["Binomial"]

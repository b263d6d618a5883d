"""``torch.distributions.poisson``: where PyTorch imports ``Poisson`` from (defined in ``engine.distributions.gamma``)."""

from engine.distributions.gamma import Poisson

__all__ = ["Poisson"]

"""``torch.distributions.bernoulli``: where PyTorch imports ``Bernoulli`` from (defined in ``engine.distributions.categorical``)."""

from engine.distributions.categorical import Bernoulli

__all__ = ["Bernoulli"]

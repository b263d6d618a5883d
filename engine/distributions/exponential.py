"""``torch.distributions.exponential``: where PyTorch imports ``Exponential`` from (defined in ``engine.distributions.normal``)."""

from engine.distributions.normal import Exponential

__all__ = ["Exponential"]

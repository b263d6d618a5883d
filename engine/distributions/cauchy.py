"""``torch.distributions.cauchy``: where PyTorch imports ``Cauchy`` from (defined in ``engine.distributions.normal``)."""

from engine.distributions.normal import Cauchy

__all__ = ["Cauchy"]

"""``torch.distributions.laplace``: where PyTorch imports ``Laplace`` from (defined in ``engine.distributions.normal``)."""

from engine.distributions.normal import Laplace

__all__ = ["Laplace"]

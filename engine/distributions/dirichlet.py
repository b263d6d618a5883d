"""``torch.distributions.dirichlet``: where PyTorch imports ``Dirichlet`` from (defined in ``engine.distributions.gamma``)."""

from engine.distributions.gamma import Dirichlet

__all__ = ["Dirichlet"]

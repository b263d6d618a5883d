"""``torch.distributions.chi2``: where PyTorch imports ``Chi2`` from (defined in ``engine.distributions.gamma``)."""

from engine.distributions.gamma import Chi2

__all__ = ["Chi2"]

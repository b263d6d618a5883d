"""``torch.distributions.log_normal``: where PyTorch imports ``LogNormal`` from (defined in ``engine.distributions.transformed_distribution``)."""

from engine.distributions.transformed_distribution import LogNormal

__all__ = ["LogNormal"]

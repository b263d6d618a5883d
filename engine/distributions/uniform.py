"""``torch.distributions.uniform``: where PyTorch imports ``Uniform`` from (defined in ``engine.distributions.normal``)."""

from engine.distributions.normal import Uniform

__all__ = ["Uniform"]

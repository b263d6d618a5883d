"""``torch.distributions.half_normal``: where PyTorch imports ``HalfNormal`` from (defined in ``engine.distributions.normal``)."""

from engine.distributions.normal import HalfNormal

__all__ = ["HalfNormal"]

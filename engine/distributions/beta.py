"""``torch.distributions.beta``: where PyTorch imports ``Beta`` from (defined in ``engine.distributions.gamma``)."""

from engine.distributions.gamma import Beta

__all__ = ["Beta"]

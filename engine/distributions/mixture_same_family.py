"""``torch.distributions.mixture_same_family``: where PyTorch imports ``MixtureSameFamily`` from (defined in ``engine.distributions.mixture``)."""

from engine.distributions.mixture import MixtureSameFamily

__all__ = ["MixtureSameFamily"]

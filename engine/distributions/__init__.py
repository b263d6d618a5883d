"""Probability distributions with sampling, log-densities and KL divergences (as ``torch.distributions``).

Example:
    >>> from engine.distributions import Normal, kl_divergence
    >>> p = Normal(engine.tensor(0.0), engine.tensor(1.0))
    >>> p.log_prob(engine.tensor(0.5))
    tensor(-1.0439)
"""

from engine.distributions import constraints, transforms
from engine.distributions.categorical import Bernoulli, Categorical
from engine.distributions.distribution import Distribution
from engine.distributions.gamma import Beta, Binomial, Chi2, Dirichlet, Gamma, Poisson
from engine.distributions.independent import Independent
from engine.distributions.kl import kl_divergence, register_kl
from engine.distributions.mixture import MixtureSameFamily, OneHotCategorical
from engine.distributions.multivariate_normal import MultivariateNormal
from engine.distributions.normal import Cauchy, Exponential, HalfNormal, Laplace, Normal, Uniform
from engine.distributions.transformed_distribution import LogNormal, TransformedDistribution
from engine.distributions.transforms import (
    AbsTransform,
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    IndependentTransform,
    PowerTransform,
    SigmoidTransform,
    SoftplusTransform,
    TanhTransform,
    Transform,
    identity_transform,
)

__all__ = ["AbsTransform", "AffineTransform", "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "ComposeTransform",
           "Dirichlet", "Distribution", "ExpTransform", "Exponential", "Gamma", "HalfNormal", "Independent", "IndependentTransform",
           "Laplace", "LogNormal", "MixtureSameFamily", "MultivariateNormal", "Normal", "OneHotCategorical",
           "Poisson", "PowerTransform", "SigmoidTransform", "SoftplusTransform", "TanhTransform", "Transform",
           "TransformedDistribution", "Uniform", "constraints", "identity_transform", "kl_divergence", "register_kl", "transforms"]

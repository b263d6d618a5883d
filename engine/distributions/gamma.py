"""Gamma, Beta, Dirichlet, Poisson and Binomial."""

from __future__ import annotations

from numbers import Number

import engine
from engine.backend import fp_ignore, fp_restore
from engine.distributions import constraints
from engine.distributions._gamma_ops import StandardGamma
from engine.distributions.distribution import _EMPTY_SIZE, Distribution
from engine.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits
from engine.ops.special import digamma, lgamma, lgamma_array
from engine.random import generator_for
from engine.tensor import Size, wrap

__all__ = ["Beta", "Binomial", "Chi2", "Dirichlet", "Gamma", "Poisson"]


def xlogy(x, y):
    """x * log(y) with 0 * log(0) = 0 (as ``torch.xlogy``)."""
    if isinstance(x, Number):
        return x * engine.log(y) if x != 0 else engine.zeros_like(y)
    safe_y = engine.where(x == 0, 1.0, y)
    return engine.where(x == 0, 0.0, x * engine.log(safe_y))


def _standard_gamma(concentration):
    return StandardGamma.apply(concentration, generator_for(concentration.device))


def _expand(self, cls, batch_shape, names, _instance, event_shape=()):
    new = self._get_checked_instance(cls, _instance)
    batch_shape = Size(batch_shape)
    for name in names:
        setattr(new, name, getattr(self, name).expand(tuple(batch_shape) + tuple(event_shape)))
    Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
    new._validate_args = self._validate_args
    return new


class Gamma(Distribution):
    """The Gamma distribution with shape ``concentration`` and ``rate`` (mean concentration / rate).

    ``rsample`` is reparameterised with the exact implicit gradient dx/dconcentration = -(dF/dconcentration)/f;
    torch uses a fitted approximation of the same quantity, so the two agree to about 2e-4 (relative).
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        batch_shape = Size() if isinstance(concentration, Number) and isinstance(rate, Number) \
            else self.concentration.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return _expand(self, Gamma, batch_shape, ("concentration", "rate"), _instance)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=_EMPTY_SIZE):
        shape = self._extended_shape(sample_shape)
        return _standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (xlogy(self.concentration, self.rate) + xlogy(self.concentration - 1, value)
                - self.rate * value - lgamma(self.concentration))

    def entropy(self):
        return (self.concentration - engine.log(self.rate) + lgamma(self.concentration)
                + (1.0 - self.concentration) * digamma(self.concentration))


class Dirichlet(Distribution):
    """The Dirichlet distribution over the simplex with ``concentration`` along the last dim.

    Limitation: ``has_rsample`` is False (torch reparameterises it with its own implicit gradient; here only
    ``sample`` is available).
    """

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = False

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        batch_shape, event_shape = concentration.shape[:-1], concentration.shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return _expand(self, Dirichlet, batch_shape, ("concentration",), _instance, self.event_shape)

    def sample(self, sample_shape=_EMPTY_SIZE):
        shape = self._extended_shape(sample_shape)
        with engine.no_grad():
            gammas = _standard_gamma(self.concentration.expand(shape))
            return gammas / gammas.sum(-1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return (xlogy(self.concentration - 1.0, value).sum(-1) + lgamma(self.concentration.sum(-1))
                - lgamma(self.concentration).sum(-1))

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, True)

    @property
    def mode(self):
        concentrationm1 = (self.concentration - 1).clamp(min=0.0)
        mode = concentrationm1 / concentrationm1.sum(-1, True)
        mask = (self.concentration < 1).all(dim=-1)
        k = self.concentration.shape[-1]
        one_hot = engine.nn.functional.one_hot(concentrationm1.argmax(-1), k).to(mode.dtype)
        return engine.where(mask.unsqueeze(-1), one_hot, mode)

    @property
    def variance(self):
        con0 = self.concentration.sum(-1, True)
        return self.concentration * (con0 - self.concentration) / (con0.pow(2) * (con0 + 1))

    def entropy(self):
        k = self.concentration.size(-1)
        a0 = self.concentration.sum(-1)
        return (lgamma(self.concentration).sum(-1) - lgamma(a0) - (k - a0) * digamma(a0)
                - ((self.concentration - 1.0) * digamma(self.concentration)).sum(-1))


class Beta(Distribution):
    """The Beta distribution on [0, 1] with ``concentration1`` (alpha) and ``concentration0`` (beta).

    Limitation: ``has_rsample`` is False, as for ``Dirichlet`` here.
    """

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(self, concentration1, concentration0, validate_args=None):
        if isinstance(concentration1, Number) and isinstance(concentration0, Number):
            concentration1_concentration0 = engine.tensor([concentration1, concentration0])
        else:
            concentration1, concentration0 = broadcast_all(concentration1, concentration0)
            concentration1_concentration0 = engine.stack([concentration1, concentration0], -1)
        self._dirichlet = Dirichlet(concentration1_concentration0, validate_args=validate_args)
        super().__init__(self._dirichlet._batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Beta, _instance)
        batch_shape = Size(batch_shape)
        new._dirichlet = self._dirichlet.expand(batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return self._dirichlet.mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def sample(self, sample_shape=_EMPTY_SIZE):
        return self._dirichlet.sample(sample_shape).select(-1, 0)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        heads_tails = engine.stack([value, 1.0 - value], -1)
        return self._dirichlet.log_prob(heads_tails)

    def entropy(self):
        return self._dirichlet.entropy()

    @property
    def concentration1(self):
        return self._dirichlet.concentration[..., 0]

    @property
    def concentration0(self):
        return self._dirichlet.concentration[..., 1]


def _poisson_array(rate, generator, xp):
    """Exact Poisson draws: multiplication of uniforms for rate < 10, Hormann's PTRS rejection above."""
    lam = rate.reshape(-1).astype(xp.float64)
    out = xp.zeros_like(lam)
    small = xp.nonzero(lam < 10)[0]
    if small.size:
        limit = xp.exp(-lam[small])
        prod = xp.ones_like(limit)
        count = xp.zeros_like(limit)
        active = xp.ones(small.size, dtype=bool)
        while bool(active.any()):
            prod = xp.where(active, prod * generator.uniform_array((small.size,), xp.float64), prod)
            active = active & (prod > limit)
            count = count + active
        out[small] = count
    todo = xp.nonzero(lam >= 10)[0]
    while todo.size:
        lt = lam[todo]
        slam, loglam = xp.sqrt(lt), xp.log(lt)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2)
        u = generator.uniform_array((todo.size,), xp.float64) - 0.5
        v = generator.uniform_array((todo.size,), xp.float64)
        us = 0.5 - xp.abs(u)
        k = xp.floor((2 * a / us + b) * u + lt + 0.43)
        quick = (us >= 0.07) & (v <= vr)
        token = fp_ignore()
        try:
            test = (xp.log(v) + xp.log(invalpha) - xp.log(a / (us * us) + b)
                    <= -lt + k * loglam - lgamma_array(k + 1, xp))
        finally:
            fp_restore(token)
        ok = quick | ((k >= 0) & ~((us < 0.013) & (v > us)) & test)
        out[todo[ok]] = k[ok]
        todo = todo[~ok]
    return out.reshape(rate.shape)


class Poisson(Distribution):
    """The Poisson distribution with ``rate`` (mean and variance)."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        batch_shape = Size() if isinstance(rate, Number) else self.rate.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return _expand(self, Poisson, batch_shape, ("rate",), _instance)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=_EMPTY_SIZE):
        shape = self._extended_shape(sample_shape)
        with engine.no_grad():
            rate = self.rate.expand(shape)
            xp = rate.device.xp
            data = _poisson_array(xp.ascontiguousarray(rate._data), generator_for(rate.device), xp)
            return wrap(data.astype(rate._data.dtype), rate.device)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return xlogy(value, rate) - rate - lgamma(value + 1)


def _clamp_by_zero(x):
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


class Binomial(Distribution):
    """The number of successes in ``total_count`` Bernoulli trials with ``probs`` (or ``logits``).

    Sampling counts uniform draws below ``probs`` and so costs memory proportional to ``max(total_count)``.
    """

    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.to(self.probs.dtype)
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.to(self.logits.dtype)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(self._param.size(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Binomial, _instance)
        batch_shape = Size(batch_shape)
        new.total_count = self.total_count.expand(batch_shape)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, getattr(self, name).expand(batch_shape))
                new._param = getattr(new, name)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    def sample(self, sample_shape=_EMPTY_SIZE):
        shape = self._extended_shape(sample_shape)
        with engine.no_grad():
            n = self.total_count.expand(shape)
            p = self.probs.expand(shape)
            max_n = int(n.max()) if n.numel() else 0
            u = engine.rand((max_n, *tuple(shape)), dtype=p.dtype, device=p.device)
            trials = engine.arange(max_n, dtype=p.dtype, device=p.device).reshape((max_n,) + (1,) * len(shape))
            return ((u < p) & (trials < n)).to(p.dtype).sum(0)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_factorial_n = lgamma(self.total_count + 1)
        log_factorial_k = lgamma(value + 1)
        log_factorial_nmk = lgamma(self.total_count - value + 1)
        normalize_term = (self.total_count * _clamp_by_zero(self.logits)
                          + self.total_count * engine.log1p(engine.exp(-engine.abs(self.logits))) - log_factorial_n)
        return value * self.logits - log_factorial_k - log_factorial_nmk - normalize_term

    def entropy(self):
        total_count = int(self.total_count.max())
        if not bool((self.total_count == total_count).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(engine.exp(log_prob) * log_prob).sum(0)

    def enumerate_support(self, expand: bool = True):
        total_count = int(self.total_count.max())
        if not bool((self.total_count == total_count).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `enumerate_support`.")
        values = engine.arange(1 + total_count, dtype=self._param.dtype, device=self._param.device)
        values = values.view((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1, *tuple(self._batch_shape)))
        return values



class Chi2(Gamma):
    """The chi-squared distribution with ``df`` degrees of freedom: Gamma(df / 2, 1 / 2)."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, engine.full_like(df, 0.5), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Chi2, _instance)
        return super().expand(batch_shape, new)

    @property
    def df(self):
        return self.concentration * 2

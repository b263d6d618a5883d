"""``engine.nn.utils.parametrizations``: weight_norm, spectral_norm and orthogonal, as PyTorch's.

Each registers a parametrization (`parametrize.register_parametrization`) with PyTorch's formula
and PyTorch's state dict layout: weight_norm keeps ``original0`` (g) and ``original1`` (v);
spectral_norm keeps the power-iteration vectors ``_u``/``_v`` as buffers of the parametrization;
orthogonal keeps ``original`` (and ``base`` with the trivialization).
"""

from __future__ import annotations

from enum import Enum, auto

import engine
from engine.nn import functional as F
from engine.nn.modules.module import Module
from engine.nn.utils import parametrize


def norm_except_dim(v, pow: float = 2, dim: int = 0):
    """The norm of each slice along ``dim`` (over every other dim), shaped to broadcast against ``v``;
    ``dim=-1``: the norm of the whole tensor (PyTorch's convention for weight_norm)."""
    if dim == -1:
        return v.norm(pow)
    moved = v.transpose(0, dim) if dim else v
    norms = moved.reshape(moved.shape[0], -1).norm(pow, dim=1)
    shape = [1] * v.dim()
    shape[dim] = v.shape[dim]
    return norms.reshape(shape)


def _weight_norm(v, g, dim: int = 0):
    return v * (g / norm_except_dim(v, 2, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """``weight = g * v / ||v||`` (norm over every dim but ``dim``): g and v are trained instead of weight."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12):
        super().__init__()
        ndim = weight.dim()
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            u = engine.empty(h, dtype=weight.dtype, device=weight.device).normal_(0, 1)
            v = engine.empty(w, dtype=weight.dtype, device=weight.device).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=self.eps))
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.dim()) if d != self.dim))
        return weight.flatten(1)

    def _power_method(self, weight_mat, n_power_iterations: int) -> None:
        u, v = self._buffers["_u"], self._buffers["_v"]
        with engine.no_grad():
            for _ in range(n_power_iterations):
                u = F.normalize(engine.mv(weight_mat, v), dim=0, eps=self.eps)
                v = F.normalize(engine.mv(weight_mat.t(), u), dim=0, eps=self.eps)
        self._buffers["_u"], self._buffers["_v"] = u, v

    def forward(self, weight):
        if weight.dim() == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * engine.mv(weight_mat, v)).sum()
        return weight / sigma

    def right_inverse(self, value):
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """``weight / sigma(weight)``, the largest singular value estimated by power iteration (each training call)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, engine.Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        transposed = (engine.nn.ConvTranspose1d, engine.nn.ConvTranspose2d, engine.nn.ConvTranspose3d)
        dim = 1 if isinstance(module, transposed) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


class _Orthogonal(Module):
    def __init__(self, weight, orthogonal_map: _OrthMaps, *, use_trivialization: bool = True):
        super().__init__()
        if weight.is_complex() and orthogonal_map == _OrthMaps.householder:
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = weight.shape
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.transpose(-2, -1)
            n, k = k, n
        if self.orthogonal_map in (_OrthMaps.matrix_exp, _OrthMaps.cayley):
            X = X.tril()
            if n != k:
                X = engine.cat([X, engine.zeros(*X.shape[:-2], n, n - k, dtype=X.dtype, device=X.device)], dim=-1)
            A = X - X.transpose(-2, -1)
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = engine.linalg.matrix_exp(A)
            else:
                eye = engine.eye(n, dtype=A.dtype, device=A.device)
                Q = engine.linalg.solve(eye - 0.5 * A, eye + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(diagonal=-1)
            tau = 2.0 / (1.0 + (A * A).sum(dim=-2))
            Q = engine.linalg.householder_product(A, tau)
            Q = Q * X.diagonal(dim1=-2, dim2=-1).int().unsqueeze(-2)
        if hasattr(self, "base"):
            Q = self.base @ Q
        if transposed:
            Q = Q.transpose(-2, -1)
        return Q

    def right_inverse(self, Q):
        if tuple(Q.shape) != tuple(self.shape):
            raise ValueError(f"Expected a matrix or batch of matrices of shape {tuple(self.shape)}. "
                             f"Got a tensor of shape {tuple(Q.shape)}.")
        Q_init = Q
        n, k = Q.shape[-2], Q.shape[-1]
        transpose = n < k
        if transpose:
            Q = Q.transpose(-2, -1)
            n, k = k, n
        if not hasattr(self, "base"):
            if self.orthogonal_map in (_OrthMaps.cayley, _OrthMaps.matrix_exp):
                raise NotImplementedError("It is not possible to assign to the matrix exponential or the Cayley "
                                          "parametrizations when use_trivialization=False.")
            raise NotImplementedError("assigning to the householder parametrization with use_trivialization=False "
                                      "needs geqrf, which the engine does not have; use the trivialization")
        if n == k:
            if not _is_orthogonal(Q):
                Q = _make_orthogonal(Q)
            else:
                Q = Q.clone()
        else:
            N = engine.randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
            Q = _make_orthogonal(engine.cat([Q, N], dim=-1))
        self.base = Q
        neg_Id = engine.zeros(*Q_init.shape, dtype=Q_init.dtype, device=Q_init.device)
        neg_Id.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
        return neg_Id


def _is_orthogonal(Q) -> bool:
    n, k = Q.shape[-2], Q.shape[-1]
    eye = engine.eye(k, dtype=Q.dtype, device=Q.device)
    eps = 10.0 * n * engine.finfo(Q.dtype).eps
    return bool(engine.allclose(Q.transpose(-2, -1) @ Q, eye, atol=eps))


def _make_orthogonal(A):
    """The Q of A's QR decomposition with R's diagonal made positive (unique, continuous in A)."""
    Q, R = engine.linalg.qr(A)
    return Q * R.diagonal(dim1=-2, dim2=-1).sign().unsqueeze(-2)


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Constrain a matrix (or batch) to be orthogonal: ``matrix_exp``, ``cayley`` or ``householder`` map."""
    weight = getattr(module, name, None)
    if not isinstance(weight, engine.Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.dim() < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.dim()} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    orth_enum = getattr(_OrthMaps, orthogonal_map, None)
    if orth_enum is None:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". '
                         f"Got: {orthogonal_map}")
    parametrize.register_parametrization(module, name, _Orthogonal(weight, orth_enum,
                                                                   use_trivialization=use_trivialization),
                                         unsafe=True)
    return module


__all__ = ["orthogonal", "spectral_norm", "weight_norm"]

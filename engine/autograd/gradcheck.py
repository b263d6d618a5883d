"""Finite-difference checks of analytic gradients: ``gradcheck`` and ``gradgradcheck``."""

from __future__ import annotations

import numpy as np

from engine.autograd.graph import grad as autograd_grad
from engine.tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised when analytic and numerical Jacobians disagree."""


def _as_tuple(x) -> tuple:
    return x if isinstance(x, tuple) else tuple(x) if isinstance(x, list) else (x,)


def _differentiable_outputs(outputs) -> list:
    return [o for o in outputs if isinstance(o, Tensor) and o._requires_grad]


def _reals(array) -> np.ndarray:
    """An array as float64 reals: a complex one as interleaved (real, imag) pairs."""
    array = np.asarray(array)
    if array.dtype.kind == "c":
        return np.stack([array.real, array.imag], -1).astype(np.float64).reshape(-1)
    return array.astype(np.float64).reshape(-1)


def _numerical_jacobian(func, inputs, input_index: int, eps: float, n_outputs: list) -> list:
    """Central differences: one (n_output_reals x n_input_reals) matrix per output.

    A complex number counts as two reals (its real and imaginary parts), perturbed one at a time.
    """
    x = inputs[input_index]
    data = x._data
    steps = (eps, eps * 1j) if data.dtype.kind == "c" else (eps,)
    columns = [np.zeros((n, data.size * len(steps))) for n in n_outputs]
    for j in range(data.size):
        position = np.unravel_index(j, data.shape)
        original = data[position].item()
        for part, step in enumerate(steps):
            values = []
            for shifted in (original + step, original - step):
                data[position] = shifted
                outs = _differentiable_like(_as_tuple(func(*inputs)), len(n_outputs))
                values.append([_reals(o.detach().numpy(force=True)) for o in outs])
            data[position] = original
            for k in range(len(n_outputs)):
                columns[k][:, j * len(steps) + part] = (values[0][k] - values[1][k]) / (2 * eps)
    return columns


def _differentiable_like(outputs, count: int) -> list:
    floats = [o for o in outputs if isinstance(o, Tensor) and o._dtype.differentiable]
    return floats[:count]


def _n_reals(t: Tensor) -> int:
    return t._data.size * (2 if t._dtype.is_complex else 1)


def _analytic_jacobian(output: Tensor, inputs: list) -> list:
    """Rows from one backward pass per output real.

    PyTorch's convention makes this the real Jacobian: seeding a complex output with 1 (or 1j) at k gives,
    for each input, d re(out_k) (or d im(out_k)) / d re(x) + i * d / d im(x).
    """
    from engine.creation import tensor as make_tensor

    n = output._data.size
    seeds = (1.0, 1j) if output._dtype.is_complex else (1.0,)
    rows = [np.zeros((n * len(seeds), _n_reals(x))) for x in inputs]
    for k in range(n):
        for part, value in enumerate(seeds):
            seed = np.zeros(n, dtype=complex if output._dtype.is_complex else float)
            seed[k] = value
            grad_output = make_tensor(seed.reshape(output._data.shape), dtype=output._dtype, device=output._device)
            grads = autograd_grad(output, inputs, grad_output, retain_graph=True, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    g_data = g.detach().numpy(force=True)
                    if not inputs[i]._dtype.is_complex:
                        g_data = g_data.real
                    rows[i][k * len(seeds) + part] = _reals(g_data)
    return rows


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **unused) -> bool:
    """Compare the analytic Jacobian of ``func`` at ``inputs`` with central finite differences.

    Use float64 (or complex128) inputs with ``requires_grad=True``; a complex value is checked as its two
    real parts, under PyTorch's gradient convention. Returns True, or raises ``GradcheckError``
    (or returns False when ``raise_exception=False``).

    Example:
        >>> x = engine.randn(3, dtype=engine.float64, requires_grad=True)
        >>> engine.autograd.gradcheck(engine.sin, (x,))
        True
    """
    inputs = _as_tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x._requires_grad]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor with requires_grad=True")
    outputs = _differentiable_outputs(_as_tuple(func(*inputs)))
    n_outputs = [_n_reals(o) for o in outputs]
    analytic = [_analytic_jacobian(o, [inputs[i] for i in wrt]) for o in outputs]
    for position, i in enumerate(wrt):
        numerical = _numerical_jacobian(func, inputs, i, eps, n_outputs)
        for k in range(len(outputs)):
            a, n = analytic[k][position], numerical[k]
            if not np.allclose(a, n, rtol=rtol, atol=atol, equal_nan=True):
                message = (f"Jacobian mismatch for output {k} with respect to input {i},\n"
                           f"numerical:{n}\nanalytical:{a}\n")
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, **unused) -> bool:
    """``gradcheck`` of the gradient itself (second derivatives through ``create_graph``)."""
    from engine.creation import randn_like

    inputs = _as_tuple(inputs)
    wrt = [x for x in inputs if isinstance(x, Tensor) and x._requires_grad]
    outputs = _differentiable_outputs(_as_tuple(func(*inputs)))
    if grad_outputs is None:
        grad_outputs = tuple(randn_like(o).requires_grad_() for o in outputs)
    grad_outputs = _as_tuple(grad_outputs)
    n_inputs = len(inputs)

    def first_derivative(*args):
        outs = _differentiable_outputs(_as_tuple(func(*args[:n_inputs])))
        used = [x for x in args[:n_inputs] if isinstance(x, Tensor) and x._requires_grad]
        grads = autograd_grad(outs, used, args[n_inputs:], create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivative, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception) if wrt else True

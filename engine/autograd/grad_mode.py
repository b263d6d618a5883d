"""Grad-mode switches: ``no_grad``, ``enable_grad``, ``inference_mode``, ``set_grad_enabled``."""

from __future__ import annotations

import functools
import threading


class _GradState(threading.local):
    enabled = True
    arrays = False  # set by the autograd engine while a built-in backward runs on raw arrays


state = _GradState()


def is_grad_enabled() -> bool:
    return state.enabled


class _GradModeContext:
    """Base of the grad-mode context managers; each one also works as a decorator."""

    _target = True

    def __enter__(self):
        self._previous = state.enabled
        state.enabled = self._target

    def __exit__(self, *exc):
        state.enabled = self._previous
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper

    def clone(self):
        return self.__class__()


class _BareDecoratorContext(_GradModeContext):
    """Also a bare decorator: ``@no_grad`` as well as ``@no_grad()``, as PyTorch allows."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        if not callable(orig_func):
            raise TypeError(f"{cls.__name__}() takes no arguments (a function when used as a bare decorator)")
        return cls()(orig_func)


class no_grad(_BareDecoratorContext):
    """Disable graph recording inside the block (or the decorated function).

    Example:
        >>> with engine.no_grad():
        ...     y = x * 2          # y.requires_grad is False
        >>> @engine.no_grad
        ... def evaluate(model, x):
        ...     return model(x)
    """

    _target = False


class enable_grad(_BareDecoratorContext):
    """Re-enable graph recording inside a ``no_grad`` block (``@enable_grad`` works bare too)."""

    _target = True


_inference = [False]  # inside inference_mode(True) (and not an inner inference_mode(False))


def is_inference_mode_enabled() -> bool:
    return _inference[0]


class inference_mode(_GradModeContext):
    """Like ``no_grad``; ``inference_mode(False)`` leaves grad mode unchanged; ``@inference_mode`` works bare."""

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)

    def __init__(self, mode: bool = True):
        self._mode = mode

    def __enter__(self):
        self._previous = state.enabled
        self._previous_inference = _inference[0]
        _inference[0] = self._mode
        if self._mode:
            state.enabled = False

    def __exit__(self, *exc):
        _inference[0] = self._previous_inference
        return super().__exit__(*exc)

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper

    def clone(self):
        return inference_mode(self._mode)


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``: immediately, and restore it when used as a context manager."""

    def __init__(self, mode: bool):
        self._previous = state.enabled
        self._target = bool(mode)
        state.enabled = self._target

    def __enter__(self):
        pass

    def __call__(self, fn):
        state.enabled = self._previous
        mode = self._target

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper

    def clone(self):
        return set_grad_enabled(self._target)

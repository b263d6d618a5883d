"""``torch.nn.utils.stateless``: the pre-2.0 home of ``functional_call``, deprecated for ``torch.func``'s."""

from __future__ import annotations

import warnings

from engine.func._module_state import functional_call as _functional_call

__all__ = ["functional_call"]


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights: bool = True,
                    strict: bool = False):
    """``engine.func.functional_call`` with PyTorch's deprecation warning for this spelling."""
    warnings.warn("This API is deprecated as of PyTorch 2.0 and will be removed in a future version of PyTorch. "
                  "Please use torch.func.functional_call instead which is a drop-in replacement.",
                  FutureWarning, stacklevel=2)
    return _functional_call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)

"""Settings of ``engine.compile`` (as ``torch._dynamo.config``); assign to change them.

Example:
    >>> engine._dynamo.config.cache_size_limit = 16
"""

from __future__ import annotations

# How many guarded graphs one compiled function keeps; past it, new inputs run eagerly (with a warning).
cache_size_limit = 8
recompile_limit = 8  # PyTorch's newer name; the smaller of the two applies
# Reraise errors of a backend (False) or warn and run eagerly (True).
suppress_errors = False
# Capture the backward of a compiled forward (and of a training step) as graph ops when every op allows it.
capture_autograd = True

"""``engine.nn``: modules, layers, losses, ``functional``, ``init`` and ``utils`` (mirrors ``torch.nn``).

Example:
    >>> import engine
    >>> from engine import nn
    >>> model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    >>> loss = nn.CrossEntropyLoss()(model(engine.randn(32, 784)), engine.randint(0, 10, (32,)))
    >>> loss.backward()
"""

from engine.nn import attention, common_types, functional, grad, init, parallel, utils
from engine.nn._factory_kwargs import factory_kwargs
from engine.nn.modules import *  # noqa: F403 - the layer classes are this package's public API
from engine.nn.modules import __all__ as _modules_all
from engine.nn.modules.module import Module
from engine.nn.parallel import DataParallel
from engine.nn.parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter

__all__ = ["Buffer", "DataParallel", "Module", "Parameter", "UninitializedBuffer", "UninitializedParameter",
           "attention", "common_types", "factory_kwargs", "functional", "grad", "init", "parallel", "utils",
           *_modules_all]

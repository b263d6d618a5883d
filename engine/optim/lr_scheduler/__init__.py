"""Learning-rate schedules, as ``torch.optim.lr_scheduler``.

Example:
    >>> from engine.optim.lr_scheduler import StepLR
    >>> sched = StepLR(opt, step_size=10, gamma=0.5)  # doctest: +SKIP
"""

from engine.optim.lr_scheduler.base import LRScheduler, _LRScheduler
from engine.optim.lr_scheduler.composite import ChainedScheduler, SequentialLR
from engine.optim.lr_scheduler.cyclical import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    OneCycleLR,
)
from engine.optim.lr_scheduler.multiplicative import (
    ConstantLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)
from engine.optim.lr_scheduler.plateau import ReduceLROnPlateau

__all__ = ["ChainedScheduler", "ConstantLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR",
           "ExponentialLR", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR", "MultiplicativeLR",
           "OneCycleLR", "PolynomialLR", "ReduceLROnPlateau", "SequentialLR", "StepLR", "_LRScheduler"]

"""Optimizers and learning-rate schedules, as ``torch.optim``.

Example:
    >>> opt = engine.optim.Adam(model.parameters(), lr=1e-3)  # doctest: +SKIP
    >>> loss.backward(); opt.step(); opt.zero_grad()  # doctest: +SKIP
"""

from engine.optim import lr_scheduler
from engine.optim.adagrad import Adagrad
from engine.optim.adam import Adam, AdamW
from engine.optim.optimizer import (
           Optimizer,
           register_optimizer_step_post_hook,
           register_optimizer_step_pre_hook,
)
from engine.optim.rmsprop import RMSprop
from engine.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler",
           "register_optimizer_step_post_hook", "register_optimizer_step_pre_hook"]

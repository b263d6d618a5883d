"""Optimizers and learning-rate schedules, as ``torch.optim``.

Example:
    >>> opt = engine.optim.Adam(model.parameters(), lr=1e-3)  # doctest: +SKIP
    >>> loss.backward(); opt.step(); opt.zero_grad()  # doctest: +SKIP
"""

from engine.optim import lr_scheduler, swa_utils
from engine.optim.adadelta import Adadelta
from engine.optim.adafactor import Adafactor
from engine.optim.adagrad import Adagrad
from engine.optim.adam import Adam, AdamW
from engine.optim.adamax import Adamax
from engine.optim.asgd import ASGD
from engine.optim.lbfgs import LBFGS
from engine.optim.muon import Muon
from engine.optim.nadam import NAdam
from engine.optim.optimizer import (
           Optimizer,
           register_optimizer_step_post_hook,
           register_optimizer_step_pre_hook,
)
from engine.optim.radam import RAdam
from engine.optim.rmsprop import RMSprop
from engine.optim.rprop import Rprop
from engine.optim.sgd import SGD
from engine.optim.sparse_adam import SparseAdam

__all__ = ["ASGD", "LBFGS", "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Muon", "NAdam",
           "Optimizer", "RAdam", "RMSprop", "Rprop", "SparseAdam", "lr_scheduler",
           "register_optimizer_step_post_hook", "register_optimizer_step_pre_hook", "swa_utils"]

"""SparseAdam: Adam on the rows a sparse gradient touches (embeddings with ``sparse=True``)."""

from __future__ import annotations

from engine.optim.optimizer import Optimizer, run_closure
from engine.tensor import _make


class SparseAdam(Optimizer):
    """Lazy Adam for sparse gradients, as ``torch.optim.SparseAdam``: only the moments (and the
    parameter entries) at the gradient's indices change. Dense gradients are refused, as in PyTorch.

    Args:
        params: parameters or parameter groups to optimize (dense tensors).
        lr: learning rate. betas: decay rates of the moment averages. eps: added to the denominator.
        maximize: ascend the objective.

    Example:
        >>> opt = engine.optim.SparseAdam(embedding.parameters(), lr=1e-3)  # doctest: +SKIP
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False):
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "maximize": maximize}
        super().__init__(params, defaults)
        sparse = [f"params[{j}] in param_groups[{i}]" for i, group in enumerate(self.param_groups)
                  for j, p in enumerate(group["params"]) if getattr(p, "is_sparse", False)]
        if sparse:
            raise ValueError(f"Sparse params at indices {sparse}: SparseAdam requires dense parameter tensors")

    def step(self, closure=None):
        """Update the entries the sparse gradients touch; ``closure`` re-evaluates the loss."""
        loss = run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if not getattr(grad, "is_sparse", False):
                    raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
                self._update_sparse(p, group, grad.coalesce())
                p._vc[0] += 1
        return loss

    def _update_sparse(self, p, group: dict, grad) -> None:
        state = self.state[p]
        xp = p._device.xp
        if not state:
            state["step"] = 0  # a plain int in PyTorch's SparseAdam
            state["exp_avg"] = _make(xp.zeros_like(p._data), p._dtype, p._device)
            state["exp_avg_sq"] = _make(xp.zeros_like(p._data), p._dtype, p._device)
        state["step"] += 1
        step = state["step"]
        index = tuple(grad._indices()._data)  # one index array per sparse dimension
        values = grad._values()._data
        if values.size == 0:
            return
        if group["maximize"]:
            values = -values
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq = state["exp_avg"]._data, state["exp_avg_sq"]._data
        # NOTE: as PyTorch, the moments decay only where the gradient is non-zero ("lazy" Adam).
        m = exp_avg[index]
        m_update = (values - m) * (1 - beta1)
        exp_avg[index] = m + m_update
        v = exp_avg_sq[index]
        v_update = (values * values - v) * (1 - beta2)
        exp_avg_sq[index] = v + v_update
        numer = m_update + m
        denom = xp.sqrt(v_update + v) + group["eps"]
        step_size = group["lr"] * (1 - beta2 ** step) ** 0.5 / (1 - beta1 ** step)
        p._data[index] += -step_size * numer / denom

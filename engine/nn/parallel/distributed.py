"""``DistributedDataParallel``: one model replica per rank, gradients averaged over the ranks in buckets.

Each parameter's gradient hook copies its (accumulated) gradient into its bucket; a full bucket's
all_reduce starts at once (asynchronously, buckets in order), so communication overlaps the rest of
backward; when backward ends (``engine.autograd.graph.queue_callback``) every bucket is waited on
and the averaged gradients are written to ``param.grad``.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from engine.autograd.grad_mode import no_grad
from engine.autograd.graph import queue_callback
from engine.distributed import collectives
from engine.distributed.process_group import ReduceOp, Work, resolve
from engine.nn.modules.module import Module
from engine.tensor import _make

_MB = 1024 * 1024


class _Bucket:
    def __init__(self, params: list, xp):
        self.params = params
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p._data.size
        self.buffer = xp.zeros(n, params[0]._data.dtype)
        self.ready = [False] * len(params)
        self.work: Work | None = None

    def view(self, i: int):
        p = self.params[i]
        start = self.offsets[i]
        return self.buffer[start:start + p._data.size].reshape(p._data.shape)


class DistributedDataParallel(Module):
    """Wrap ``module`` so ``backward()`` leaves every rank the same averaged gradients.

    Args:
        module: the replica (the same architecture on every rank); parameters and buffers of
            rank 0 are broadcast to the others here.
        bucket_cap_mb: the largest bucket of gradients reduced in one all_reduce.
        find_unused_parameters: allow parameters that get no gradient in a step.
        broadcast_buffers: copy rank 0's buffers to every rank before each forward.

    Example:
        >>> model = DistributedDataParallel(nn.Linear(4, 2))
        >>> model(x).sum().backward()     # model.module.weight.grad: the mean over ranks
    """

    def __init__(self, module, device_ids=None, output_device=None, dim: int = 0, broadcast_buffers: bool = True,
                 init_sync: bool = True, process_group=None, bucket_cap_mb=None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 delay_all_reduce_named_params=None, param_to_hook_all_reduce=None, mixed_precision=None,
                 device_mesh=None):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an engine nn.Module, got {type(module).__name__}")
        if not any(p.requires_grad for p in module.parameters()):
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self.module = module
        self.process_group = resolve(process_group, "DistributedDataParallel")
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.bucket_bytes_cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * _MB)
        self.require_backward_grad_sync = True
        self._params = [p for p in module.parameters() if p.requires_grad]
        if init_sync:
            self._sync_module_states()
        self._buckets = self._make_buckets()
        self._where = {id(p): (b, i) for b in self._buckets for i, p in enumerate(b.params)}
        self._pass_open = False
        self._next_launch = 0
        self._grad_hook_handles = [p.register_hook(self._grad_hook(p)) for p in self._params]

    def _sync_module_states(self) -> None:
        with no_grad():
            for t in [*self.module.parameters(), *self.module.buffers()]:
                collectives.broadcast(t, src=self.process_group._ranks[0], group=self.process_group)

    def _make_buckets(self) -> list[_Bucket]:
        from engine.backend import get_array_module

        buckets: list[list] = []
        current: list = []
        size = 0
        for p in reversed(self._params):  # NOTE: reverse order approximates the order backward produces
            if current and (size + p._data.nbytes > self.bucket_bytes_cap or p._data.dtype != current[0]._data.dtype):
                buckets.append(current)
                current, size = [], 0
            current.append(p)
            size += p._data.nbytes
        if current:
            buckets.append(current)
        return [_Bucket(ps, get_array_module(ps[0]._device)) for ps in buckets]

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and self.require_backward_grad_sync:
            with no_grad():
                for b in self.module.buffers():
                    collectives.broadcast(b, src=self.process_group._ranks[0], group=self.process_group)
        return self.module(*inputs, **kwargs)

    @contextmanager
    def no_sync(self):
        """Inside, backward accumulates local gradients without communication (gradient accumulation)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _grad_hook(self, param):
        def hook(grad):
            if not self.require_backward_grad_sync:
                return None
            if not self._pass_open:
                self._pass_open = True
                self._next_launch = 0
                queue_callback(self._finish_pass)
            bucket, i = self._where[id(param)]
            current = grad._data if param.grad is None else param.grad._data + grad._data
            bucket.view(i)[...] = current
            bucket.ready[i] = True
            if not self.find_unused_parameters:  # NOTE: else every rank first agrees on what was used
                self._launch_ready()
                for b in self._buckets[:self._next_launch]:
                    if b.work is not None:
                        b.work.is_completed()  # NOTE: MPI progresses a nonblocking op only inside MPI calls
            return None
        return hook

    def _launch_ready(self) -> None:
        while self._next_launch < len(self._buckets) and all(self._buckets[self._next_launch].ready):
            bucket = self._buckets[self._next_launch]
            bucket.work = self.process_group.allreduce(bucket.buffer, ReduceOp.AVG)
            self._next_launch += 1

    def _finish_pass(self) -> None:
        self._pass_open = False
        unused = [(b, i) for b in self._buckets for i, r in enumerate(b.ready) if not r]
        used_anywhere = None
        if unused and not self.find_unused_parameters:
            names = {id(p): n for n, p in self.module.named_parameters()}
            missing = [names.get(id(b.params[i]), "?") for b, i in unused]
            for b in self._buckets:
                if b.work is not None:
                    b.work.wait()
            self._reset()
            raise RuntimeError(
                "DistributedDataParallel: parameters received no gradient in this backward: "
                f"{missing}. Expected every parameter to be used in producing loss; pass "
                "find_unused_parameters=True to DistributedDataParallel for models with unused parameters.")
        if self.find_unused_parameters:
            xp = getattr(self.process_group, "cp", np)  # NOTE: the nccl group reduces device arrays
            used = xp.asarray(np.array([int(r) for b in self._buckets for r in b.ready], np.int32))
            self.process_group.allreduce(used, ReduceOp.MAX).wait()
            used_anywhere = iter(used.tolist())
            for b, i in unused:
                p = b.params[i]
                b.view(i)[...] = 0 if p.grad is None else p.grad._data
                b.ready[i] = True
            self._launch_ready()
        for bucket in self._buckets:
            assert bucket.work is not None  # every bucket is full by now, so launched
            bucket.work.wait()
            for i, p in enumerate(bucket.params):
                used_here = True if used_anywhere is None else bool(next(used_anywhere))
                if not used_here:
                    continue
                view = bucket.view(i)
                p.grad = _make(view if self.gradient_as_bucket_view else view.copy(), p._dtype, p._device)
        self._reset()

    def _reset(self) -> None:
        for bucket in self._buckets:
            bucket.ready = [False] * len(bucket.params)
            bucket.work = None
        self._pass_open = False

    def register_comm_hook(self, state, hook):
        raise RuntimeError("DistributedDataParallel.register_comm_hook is not supported by engine")

    def _set_static_graph(self) -> None:
        self.static_graph = True

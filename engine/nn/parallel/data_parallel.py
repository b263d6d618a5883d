"""``DataParallel``: a single-device pass-through with ``torch.nn.DataParallel``'s interface.

The engine runs one process per device (``DistributedDataParallel``); ``DataParallel`` keeps scripts that wrap
their model in it working: ``forward`` calls the wrapped ``module`` on the inputs as given, and the state_dict
keys carry torch's ``module.`` prefix. Asking for more than one device warns, since only one is used.
"""

from __future__ import annotations

import warnings

from engine.nn.modules.module import Module


def _device_index(device) -> int:
    if isinstance(device, int):
        return device
    index = getattr(device, "index", None)
    if index is None and isinstance(device, str):
        index = int(device.split(":")[1]) if ":" in device else 0
    return 0 if index is None else index


class DataParallel(Module):
    """Wrap ``module`` as ``torch.nn.DataParallel`` does, running it on one device (no scatter/replicate).

    Example:
        >>> dp = nn.DataParallel(nn.Linear(4, 2))
        >>> list(dp.state_dict())
        ['module.weight', 'module.bias']
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel expects an nn.Module, got {type(module).__name__}")
        replicate = getattr(module, "_replicate_for_data_parallel", None)
        if replicate is not None and getattr(module, "has_uninitialized_params", lambda: False)():
            replicate()  # a lazy module raises torch's error: run the dry forward first
        from engine import cuda

        if device_ids is None:
            device_ids = list(range(cuda.device_count())) if cuda.is_available() else []
        self.module = module
        self.dim = dim
        self.device_ids = [_device_index(d) for d in device_ids]
        self.output_device = _device_index(output_device if output_device is not None else
                                           (self.device_ids[0] if self.device_ids else 0))
        if len(self.device_ids) > 1:
            warnings.warn(f"DataParallel runs the module on one device only (not on {len(self.device_ids)}); "
                          "use DistributedDataParallel with one process per device to use them all",
                          UserWarning, stacklevel=2)

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)

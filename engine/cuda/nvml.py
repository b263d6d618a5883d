"""``engine.cuda.utilization`` and friends: live device readings through NVML (``nvidia-ml-py``), as torch.cuda's."""

from __future__ import annotations

import os

from engine.cuda._lazy import device_index


def _handle(device):
    try:
        import pynvml
    except ModuleNotFoundError:
        raise ModuleNotFoundError("pynvml does not seem to be installed or it can't be imported "
                                  "(pip install nvidia-ml-py, or kiln[gpu])") from None
    pynvml.nvmlInit()
    index = device_index(device)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
    # NOTE: NVML numbers every GPU of the machine; CUDA only the visible ones, in CUDA_VISIBLE_DEVICES order
    if index < len(visible) and visible[index].strip().isdigit():
        index = int(visible[index])
    return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)


def utilization(device=None) -> int:
    """Percent of the last sample period in which a kernel ran on ``device``."""
    nvml, handle = _handle(device)
    return int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)


def memory_usage(device=None) -> int:
    """Percent of the last sample period in which device memory was read or written."""
    nvml, handle = _handle(device)
    return int(nvml.nvmlDeviceGetUtilizationRates(handle).memory)


def temperature(device=None) -> int:
    """The GPU's temperature in degrees Celsius."""
    nvml, handle = _handle(device)
    return int(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))


def power_draw(device=None) -> int:
    """The board's power draw in milliwatts."""
    nvml, handle = _handle(device)
    return int(nvml.nvmlDeviceGetPowerUsage(handle))


def clock_rate(device=None) -> int:
    """The SM clock in MHz."""
    nvml, handle = _handle(device)
    return int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))


def device_memory_used(device=None) -> int:
    """Bytes of ``device`` memory in use by every process, as the driver reports them."""
    nvml, handle = _handle(device)
    return int(nvml.nvmlDeviceGetMemoryInfo(handle).used)


def list_gpu_processes(device=None) -> str:
    """A readable list of the processes using ``device`` and the GPU memory each holds."""
    nvml, handle = _handle(device)
    lines = [f"GPU:{device_index(device)}"]
    processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    if not processes:
        lines.append("no processes are running")
    for p in processes:
        lines.append(f"process {p.pid:>10d} uses {p.usedGpuMemory / (1024 * 1024):>12.3f} MB GPU memory")
    return "\n".join(lines)

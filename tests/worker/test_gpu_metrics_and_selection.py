"""GPU system metrics through NVML (a fake pynvml here) and KILN_WORKER_GPUS: which GPUs a worker offers."""

from __future__ import annotations

import sys
import types

import pytest

from webapp.config import ConfigError, load_config
from worker.gpus import select_gpus
from worker.job_env import job_environment
from worker.sysmetrics import SystemSampler


class _NotSupported(Exception):
    pass


def _fake_pynvml(boards: dict[int, dict]):
    """A pynvml module over ``boards`` (index -> readings); a board without "power_mw" raises NotSupported."""
    nvml = types.ModuleType("pynvml")
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.nvmlInit = lambda: None

    def handle(index):
        if index not in boards:
            raise _NotSupported(f"invalid index {index}")
        return boards[index]

    def power(h):
        if "power_mw" not in h:
            raise _NotSupported("power")
        return h["power_mw"]

    nvml.nvmlDeviceGetHandleByIndex = handle
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=h["util"], memory=h["mem_util"])
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=h["used"], total=h["total"], free=0)
    nvml.nvmlDeviceGetPowerUsage = power
    nvml.nvmlDeviceGetTemperature = lambda h, sensor: h["temp"]
    return nvml


def test_each_pinned_gpu_reports_utilisation_memory_power_and_temperature(monkeypatch):
    boards = {0: {"util": 10, "mem_util": 5, "used": 2**30, "total": 80 * 2**30, "power_mw": 250_500, "temp": 61},
              2: {"util": 97, "mem_util": 40, "used": 3 * 2**30, "total": 80 * 2**30, "temp": 70}}
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(boards))
    sampler = SystemSampler(lambda: [], gpu_indices=[2, 5])
    points = {p.key: p for p in sampler.sample()}
    assert points["sys/gpu2/util_percent"].value == 97.0 and points["sys/gpu2/memory_mb"].value == 3 * 1024
    assert points["sys/gpu2/memory_total_mb"].value == 80 * 1024 and points["sys/gpu2/temperature_c"].value == 70
    assert points["sys/gpu2/memory_util_percent"].value == 40.0
    assert "sys/gpu2/power_watts" not in points  # NotSupported on this board: left out, the rest still logged
    assert not any(k.startswith(("sys/gpu0/", "sys/gpu5/")) for k in points)  # only pinned GPUs that exist
    point = points["sys/gpu2/util_percent"]
    assert point.step == 0 and point.wall_time > 1.7e9  # a numbered sample, charted against its wall time
    sampler = SystemSampler(lambda: [], gpu_indices=[0])
    assert {p.key: p.value for p in sampler.sample()}["sys/gpu0/power_watts"] == 250.5


def test_without_nvml_there_are_no_gpu_metrics(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert not any("gpu" in p.key for p in SystemSampler(lambda: [], gpu_indices=[0]).sample())


FOUND = [{"index": i, "name": "H200", "memory_mb": 143_771} for i in range(4)]


def test_kiln_worker_gpus_selects_the_offered_gpus(tmp_path):
    config = load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_WORKER_GPUS": " 3, 1 "})
    assert config.worker_gpus == (3, 1)
    offered = select_gpus(FOUND, config.worker_gpus)
    assert [g["index"] for g in offered] == [3, 1]
    assert select_gpus(FOUND, load_config({"KILN_DATA_DIR": str(tmp_path)}).worker_gpus) == FOUND
    assert select_gpus(FOUND, load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_WORKER_GPUS": "none"})
                       .worker_gpus) == []
    with pytest.raises(ValueError, match=r"names GPU\(s\) \[7\] but this machine has \[0, 1, 2, 3\]"):
        select_gpus(FOUND, (1, 7))


@pytest.mark.parametrize("raw", ["0,0", "a", "-1", "1;2", "1,,2", "99999"])
def test_bad_kiln_worker_gpus_fail_at_start_up(tmp_path, raw):
    with pytest.raises(ConfigError, match="KILN_WORKER_GPUS"):
        load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_WORKER_GPUS": raw})


def test_jobs_are_pinned_with_cuda_visible_devices_from_the_offered_gpus(tmp_path):
    granted = [g["index"] for g in select_gpus(FOUND, (3, 1))][:1]
    env = job_environment(run_id=1, attempt=1, run_dir=tmp_path, events=tmp_path / "e", config=tmp_path / "c",
                          resume=None, python_path=tmp_path, gpu_indices=granted, python_bin=tmp_path)
    assert env["CUDA_VISIBLE_DEVICES"] == "3"

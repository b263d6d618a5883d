"""What a worker offers runs: KILN_WORKER_CPUS and KILN_WORKER_MEMORY_GB, else what the host has."""

from __future__ import annotations

import os

import psutil

from webapp.config import load_config
from worker.main import RUNS_MEMORY_SHARE, runs_cpu_slots, runs_memory_mb


def test_capacity_set_by_the_operator_is_what_the_worker_registers(tmp_path):
    config = load_config({"KILN_DATA_DIR": str(tmp_path), "KILN_WORKER_CPUS": "3", "KILN_WORKER_MEMORY_GB": "1.5"})

    assert runs_cpu_slots(config) == 3
    assert runs_memory_mb(config) == 1536


def test_capacity_defaults_to_the_host(tmp_path):
    config = load_config({"KILN_DATA_DIR": str(tmp_path)})

    assert runs_cpu_slots(config) == (os.cpu_count() or 1)
    assert runs_memory_mb(config) == int(psutil.virtual_memory().total * RUNS_MEMORY_SHARE) // 2**20

"""A job's cgroups: v2 against a fake cgroup folder, v1 against this machine's (where root may write it)."""

from __future__ import annotations

import os
import resource
import uuid
from pathlib import Path

import pytest
from services import require

from worker import cgroup
from worker.cgroup import JobCgroup, remove_stale
from worker.limits import GB, JobLimits

V1_WRITABLE = all((root / "cgroup.procs").exists() and os.access(root, os.W_OK)
                  for root in (cgroup.V1_PIDS, cgroup.V1_MEMORY))


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    """A cgroup2 root as the kernel lays it out, with pids and memory handed down to children."""
    root = tmp_path / "cgroup2"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("memory pids\n")
    (root / "cgroup.procs").write_text("1\n")
    monkeypatch.setattr(cgroup, "V2_ROOT", root)
    monkeypatch.setattr(cgroup, "V1_PIDS", tmp_path / "absent-pids")
    monkeypatch.setattr(cgroup, "V1_MEMORY", tmp_path / "absent-memory")
    return root


def test_v2_one_folder_gets_the_process_and_memory_limits_and_no_swap(fake_v2):
    group = JobCgroup.create("kiln-w-abc-7-1", max_pids=64, memory_bytes=int(0.3 * GB))
    assert group is not None and group.folders == (fake_v2 / "kiln-w-abc-7-1",)
    folder = group.folders[0]
    assert (folder / "pids.max").read_text() == "64"
    assert (folder / "memory.max").read_text() == str(int(0.3 * GB))
    assert (folder / "memory.swap.max").read_text() == "0"
    assert (folder / "memory.oom.group").read_text() == "1"
    assert group.limits_memory and group.limits_processes


def test_v2_reports_the_oom_kill_and_the_peak(fake_v2):
    group = JobCgroup.create("kiln-w-abc-7-1", max_pids=64, memory_bytes=GB)
    assert group is not None and not group.out_of_memory()
    folder = group.folders[0]
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n")
    (folder / "memory.peak").write_text(f"{GB + 4096}\n")
    (folder / "pids.events").write_text("max 0\n")
    assert group.out_of_memory() and group.memory_peak() == GB + 4096 and not group.hit_process_limit()


def test_v2_without_the_memory_controller_limits_processes_only(fake_v2):
    (fake_v2 / "cgroup.controllers").write_text("cpu pids\n")
    (fake_v2 / "cgroup.subtree_control").write_text("pids\n")
    group = JobCgroup.create("kiln-w-abc-7-1", max_pids=64, memory_bytes=GB)
    assert group is not None and group.limits_processes and not group.limits_memory
    assert not (group.folders[0] / "memory.max").exists()
    assert group.memory_peak() is None and not group.out_of_memory()


def test_rlimit_data_is_the_memory_limit_only_without_a_memory_cgroup():
    limits = JobLimits(wall_seconds=1, memory_bytes=GB)
    assert (resource.RLIMIT_DATA, GB) in limits.rlimits(memory_cgroup=False)
    assert resource.RLIMIT_DATA not in dict(limits.rlimits(memory_cgroup=True))


def test_no_cgroup_hierarchy_means_none(tmp_path, monkeypatch):
    for name in ("V2_ROOT", "V1_PIDS", "V1_MEMORY"):
        monkeypatch.setattr(cgroup, name, tmp_path / name)
    assert JobCgroup.create("kiln-w-abc-7-1", max_pids=64, memory_bytes=GB) is None


def test_remove_stale_deletes_every_controllers_folders_with_the_prefix(fake_v2):
    for name in ("kiln-w-dead-1-1", "kiln-w-dead-2-1", "kiln-w-live-3-1"):
        (fake_v2 / name).mkdir()
    assert remove_stale("kiln-w-dead-") == 2
    assert sorted(p.name for p in fake_v2.iterdir() if p.is_dir()) == ["kiln-w-live-3-1"]


def test_v1_memory_and_pids_folders_are_made_limited_and_removed():
    require(V1_WRITABLE, "needs cgroup v1 pids and memory hierarchies writable (root)")
    name = f"kiln-test-{uuid.uuid4().hex[:8]}-1-1"
    group = JobCgroup.create(name, max_pids=32, memory_bytes=int(0.5 * GB))
    assert group is not None and group.limits_memory and group.limits_processes
    try:
        assert group.folders == (cgroup.V1_PIDS / name, cgroup.V1_MEMORY / name)
        assert (cgroup.V1_PIDS / name / "pids.max").read_text().strip() == "32"
        limit = int((cgroup.V1_MEMORY / name / "memory.limit_in_bytes").read_text())
        assert limit == int(0.5 * GB) // 4096 * 4096  # the kernel keeps whole pages
        memsw = cgroup.V1_MEMORY / name / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            assert int(memsw.read_text()) == limit
        assert group.memory_peak() == 0 and not group.out_of_memory()
    finally:
        assert group.remove()
    assert not any(Path(folder).exists() for folder in group.folders)


def test_v1_remove_stale_deletes_the_jobs_pids_and_memory_folders():
    require(V1_WRITABLE, "needs cgroup v1 pids and memory hierarchies writable (root)")
    prefix = f"kiln-test-{uuid.uuid4().hex[:8]}-"
    group = JobCgroup.create(f"{prefix}1-1", max_pids=32, memory_bytes=GB)
    assert group is not None and len(group.folders) == 2
    assert remove_stale(prefix) == 1
    assert not any(folder.exists() for folder in group.folders)

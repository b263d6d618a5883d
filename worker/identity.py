"""This worker process's identity: a random instance id beside its name (KILN_WORKER_NAME).

The name is what the scheduler and users see; the instance id tells two processes of one name
apart, so a process only ever cleans up after its own dead predecessor (runs, job cgroups).
"""

from __future__ import annotations

import uuid

_instance_id = uuid.uuid4().hex
EXIT_NAME_TAKEN = 3  # `kiln worker` exits so when another live process holds its name: restarting will not help


def instance_id() -> str:
    """This process's instance id (uuid4 hex), fixed for its life."""
    return _instance_id


def cgroup_prefix(worker_name: str, instance: str | None = None) -> str:
    """Names of the job cgroups an instance creates start with this (default: this process's)."""
    return f"kiln-{worker_name}-{(instance or _instance_id)[:12]}-"

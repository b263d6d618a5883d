"""Fair share, quotas and memory with real `kiln scheduler` and `kiln worker` processes on CPU-only workers.

Two workers whose capacity the operator set: "worker-small" (KILN_WORKER_CPUS=2,
KILN_WORKER_MEMORY_GB=1) and "worker-big" (4 CPU slots, 6 GB). A test that needs only one of
them parks the other as a stopping worker is parked (its row marked draining, which the
flush between tests undoes). Runs are short code runs; what is left is cancelled at the end.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from cluster import running_cluster, wait_for
from factories import MembershipFactory, ProjectFactory, TeamFactory
from services import reachable

from webapp.accounts.models import Role
from webapp.cluster.models import Quota, Worker
from webapp.experiments.lifecycle import run_cancel
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import CodeUpload, run_submit

pytestmark = pytest.mark.slow
SMALL, BIG = "worker-small", "worker-big"
HOLDING = (RunState.SCHEDULED, RunState.RUNNING)


@pytest.fixture(scope="module")
def cpu_cluster(django_db_setup, django_db_blocker, tmp_path_factory):
    import os

    redis_url = os.environ.get("REDIS_URL") or None
    if redis_url and not reachable(redis_url, 6379):
        redis_url = None
    role_env = {"worker": {"KILN_WORKER_CPUS": "4", "KILN_WORKER_MEMORY_GB": "6"}}
    with running_cluster(django_db_blocker, tmp_path_factory.mktemp("kiln-cpu"), redis_url, role_env) as stack:
        stack.stop(next(name for name in stack.procs if name.startswith("worker-")))  # the default-named one
        stack.start("worker", BIG)
        stack.role_env["worker"] = {"KILN_WORKER_CPUS": "2", "KILN_WORKER_MEMORY_GB": "1"}
        stack.start("worker", SMALL)
        yield stack


@pytest.fixture
def kiln(cpu_cluster, transactional_db) -> Iterator:
    cpu_cluster.wait_workers([SMALL, BIG])
    yield cpu_cluster
    for run in Run.objects.exclude(state__in=(RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)):
        run_cancel(user=run.owner, run=run)
    wait_for(lambda: not Run.objects.filter(state__in=HOLDING).exists(), 60, "runs never stopped", cpu_cluster.logs)


def only(name: str) -> None:
    Worker.objects.exclude(name=name).update(draining=True)


def submit(project, user=None, *, seconds: float = 1.0, memory_gb: float = 0.25, cpus: int = 1) -> Run:
    source = f"import time\ntime.sleep({seconds})\nprint('done')\n"
    spec = {"resources": {"max_minutes": 5, "memory_gb": memory_gb, "cpus": cpus}}
    code = CodeUpload(filename="main.py", data=textwrap.dedent(source).encode())
    return run_submit(user=user or project.owner_user, project=project, spec=spec, code=code).runs[0]


def start_order(runs: list[Run], at_least: int, kiln) -> list[Run]:
    """Wait until `at_least` of `runs` were placed; the placed ones, in the order they were placed."""
    ids = [run.id for run in runs]
    wait_for(lambda: Run.objects.filter(id__in=ids, scheduled_at__isnull=False).count() >= at_least, 120,
             f"{at_least} runs never started", kiln.logs)
    return list(Run.objects.filter(id__in=ids, scheduled_at__isnull=False).select_related("owner")
                .order_by("scheduled_at", "id"))


def test_the_second_users_first_run_starts_within_the_first_four_on_two_slots(kiln):
    only(SMALL)
    alice, bob = ProjectFactory(), ProjectFactory()
    alice_runs = [submit(alice, seconds=3) for _ in range(20)]
    bob_runs = [submit(bob, seconds=3) for _ in range(5)]

    order = start_order(alice_runs + bob_runs, 8, kiln)

    owners = [run.owner_id for run in order]
    assert bob.owner_user_id in owners[:4], owners
    assert {run.worker.name for run in order} == {SMALL}
    assert owners[:8].count(bob.owner_user_id) >= 3  # alternating, not bob's five after alice's twenty


def test_three_users_in_two_teams_share_by_team_first_on_four_slots(kiln):
    only(BIG)
    red, blue = TeamFactory(slug="red"), TeamFactory(slug="blue")
    r1, r2, b1 = (MembershipFactory(team=team, role=Role.EDITOR).user for team in (red, red, blue))
    red_project, blue_project = ProjectFactory(owner_user=None, team=red), ProjectFactory(owner_user=None, team=blue)
    blocker = submit(ProjectFactory(), seconds=4, cpus=4)  # holds every slot while the others queue up
    kiln.wait_state(blocker, (RunState.RUNNING,), 60)
    runs = [submit(red_project, r1) for _ in range(8)] + [submit(red_project, r2) for _ in range(8)]
    runs += [submit(blue_project, b1) for _ in range(8)]

    order = start_order(runs, 8, kiln)[:8]

    users = [run.owner_id for run in order]
    blue_starts, r1_starts, r2_starts = users.count(b1.id), users.count(r1.id), users.count(r2.id)
    assert 3 <= blue_starts <= 5, users  # blue, a team of one, gets about what the two of red share
    assert blue_starts > max(r1_starts, r2_starts) and min(r1_starts, r2_starts) >= 1, users


def test_a_user_at_quota_waits_with_the_quota_reason_while_others_run(kiln):
    only(BIG)
    alice, bob = ProjectFactory(), ProjectFactory()
    Quota.objects.create(user=alice.owner_user, runs=1)
    alice_runs = [submit(alice, seconds=6) for _ in range(3)]
    bob_runs = [submit(bob, seconds=6) for _ in range(2)]

    wait_for(lambda: Run.objects.filter(id__in=[r.id for r in bob_runs], state=RunState.RUNNING).count() == 2, 60,
             "bob's runs never ran", kiln.logs)

    states = dict(Run.objects.filter(id__in=[r.id for r in alice_runs]).values_list("id", "state"))
    assert sorted(states.values()).count(RunState.QUEUED) == 2, states
    waiting = Run.objects.filter(id__in=[r.id for r in alice_runs], state=RunState.QUEUED)
    assert {run.pending_reason for run in waiting} == {"your quota: 1 of 1 run running"}


def test_a_memory_heavy_run_goes_where_the_memory_is_and_waits_when_it_is_short(kiln):
    project = ProjectFactory()
    heavy = submit(project, seconds=5, memory_gb=4)
    heavy = kiln.wait_state(heavy, (RunState.RUNNING,), 60)
    second = submit(project, seconds=1, memory_gb=4)
    light = submit(project, seconds=1, memory_gb=0.5)

    kiln.wait_state(light, (RunState.SUCCEEDED,), 60)
    second.refresh_from_db()

    assert heavy.worker.name == BIG
    assert second.state == RunState.QUEUED, kiln._run_story(second)
    assert second.pending_reason.startswith("waiting for 4 GB of memory on one worker; most free is ")
    second = kiln.wait_state(second, (RunState.SUCCEEDED,), 60)
    assert second.worker.name == BIG  # never the 1 GB worker, though its slots were free all along

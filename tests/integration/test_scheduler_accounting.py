"""What the scheduler reads each tick besides runs and workers: admin quotas, usage kept between ticks, estimates."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from factories import MembershipFactory, ProjectFactory, TeamFactory, UserFactory

from scheduler.accounting import DurationHistory, UsageLedger, policy_quotas, run_subject
from scheduler.loop import Scheduler
from scheduler.policy import ClusterCapacity, Limits, PolicyConfig, Quotas
from webapp.cluster.models import Quota
from webapp.cluster.services import worker_register
from webapp.experiments.models import Run, RunState
from webapp.experiments.submit import run_submit

pytestmark = pytest.mark.django_db
CAPACITY = ClusterCapacity(gpus=4, cpu_slots=8, memory_mb=0)
CONFIG = PolicyConfig()


def submit(project, *, gpus: int = 0, model: str = "mlp", max_minutes: int = 60, user=None) -> Run:
    spec = {"recipe": {"model": model}, "resources": {"gpus": gpus, "max_minutes": max_minutes}}
    return run_submit(user=user or project.owner_user, project=project, spec=spec).runs[0]


def finished(project, *, minutes: float, ago_minutes: float = 1.0, state: str = RunState.SUCCEEDED, **kwargs) -> Run:
    run = submit(project, **kwargs)
    end = timezone.now() - timedelta(minutes=ago_minutes)
    Run.objects.filter(id=run.id).update(state=state, started_at=end - timedelta(minutes=minutes), finished_at=end)
    return run


def test_usage_kept_between_ticks_matches_a_full_read():
    projects = [ProjectFactory(), ProjectFactory()]
    for n in range(30):
        finished(projects[n % 2], minutes=n + 1, ago_minutes=60 * n, gpus=n % 3)
    ledger = UsageLedger()
    ledger.totals(CONFIG, time.time(), CAPACITY)
    assert ledger.rows_read == 30
    for n in range(5):
        finished(projects[n % 2], minutes=5, ago_minutes=0.5, gpus=1)
    running = submit(projects[0], gpus=2)
    Run.objects.filter(id=running.id).update(state=RunState.RUNNING, started_at=timezone.now() - timedelta(minutes=10))
    now = time.time()

    kept = ledger.totals(CONFIG, now, CAPACITY)
    fresh = UsageLedger().totals(CONFIG, now, CAPACITY)

    assert ledger.rows_read == 6  # the 5 finished since, and one from before inside the overlap window
    for user in fresh.by_user:
        assert kept.by_user[user] == pytest.approx(fresh.by_user[user], rel=1e-9)


def test_a_change_of_capacity_reads_the_history_again():
    finished(ProjectFactory(), minutes=10, gpus=1)
    ledger = UsageLedger()
    before = ledger.totals(CONFIG, time.time(), CAPACITY)

    after = ledger.totals(CONFIG, time.time(), ClusterCapacity(gpus=8, cpu_slots=8))

    assert ledger.rows_read == 1
    [user] = before.by_user
    assert after.by_user[user] == pytest.approx(before.by_user[user] / 2, rel=1e-3)  # 1 of 8 GPUs, not 1 of 4


def test_week_gpu_seconds_count_only_the_last_seven_days_of_those_with_a_gpu_hours_quota():
    project, other = ProjectFactory(), ProjectFactory()
    finished(project, minutes=60, ago_minutes=10, gpus=2)  # 2 GPU-hours this week
    finished(project, minutes=60, ago_minutes=8 * 24 * 60, gpus=4)  # last week
    finished(project, minutes=600, ago_minutes=10, gpus=0)  # no GPUs
    finished(other, minutes=60, ago_minutes=10, gpus=1)  # no GPU-hours quota: not read
    user = project.owner_user.username
    config = PolicyConfig(quotas=Quotas(users={user: Limits(gpu_hours_per_week=10)}))

    usage = UsageLedger().totals(config, time.time(), CAPACITY, week_gpu_seconds=True)

    assert usage.week_gpu_seconds_by_user == {user: pytest.approx(2 * 3600, rel=1e-3)}


def test_estimate_is_the_median_of_the_projects_succeeded_runs_of_the_same_recipe(django_assert_num_queries):
    project, other = ProjectFactory(), ProjectFactory()
    for minutes in (4, 5, 30):
        finished(project, minutes=minutes)
    finished(project, minutes=50, state=RunState.FAILED)
    finished(project, minutes=90, model="cnn")
    finished(other, minutes=70)
    history = DurationHistory()
    mlp = run_subject(project.id, "recipe", "", "mlp", "digits")

    [estimate] = history.estimates([mlp]).values()

    assert (estimate.minutes, estimate.runs) == (5, 3)
    assert estimate.describe(60) == "about 5 min, median of 3 earlier runs of recipe mlp/digits"
    assert estimate.describe(2) == "about 2 min, median of 3 earlier runs of recipe mlp/digits (capped at its max_minutes)"
    with django_assert_num_queries(0):  # read at most once per refresh, whatever the number of queued runs
        assert history.estimates([mlp] * 1000)[mlp] == estimate


def test_admin_quotas_become_the_policys():
    alice, team = UserFactory(username="alice"), TeamFactory(slug="ml")
    Quota.objects.create(user=alice, gpus=4, runs=10, memory_gb=1.5)
    Quota.objects.create(team=team, gpu_hours_per_week=100)

    quotas = policy_quotas()

    assert quotas.users == {"alice": Limits(gpus=4, memory_mb=1536, runs=10)}
    assert quotas.teams == {"ml": Limits(gpu_hours_per_week=100)}
    assert quotas.counts_gpu_hours


def test_a_user_at_their_quota_waits_with_its_reason_while_others_start(app):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=4, gpus=[])
    alice, bob = ProjectFactory(), ProjectFactory()
    Quota.objects.create(user=alice.owner_user, runs=1)
    alice_runs = [submit(alice) for _ in range(3)]
    bob_runs = [submit(bob) for _ in range(2)]

    Scheduler(app=app).tick()

    states = dict(Run.objects.values_list("id", "state"))
    assert [states[run.id] for run in alice_runs] == [RunState.SCHEDULED, RunState.QUEUED, RunState.QUEUED]
    assert {states[run.id] for run in bob_runs} == {RunState.SCHEDULED}
    assert Run.objects.get(id=alice_runs[1].id).pending_reason == "your quota: 1 of 1 run running"


def test_a_teams_quota_holds_across_its_members(app):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=8, gpus=[])
    team = TeamFactory(slug="ml")
    ada, bob = MembershipFactory(team=team, role="editor").user, MembershipFactory(team=team, role="editor").user
    project = ProjectFactory(owner_user=None, team=team)
    Quota.objects.create(team=team, cpus=2)
    runs = [submit(project, user=ada), submit(project, user=bob), submit(project, user=ada)]

    Scheduler(app=app).tick()

    states = [Run.objects.get(id=run.id) for run in runs]
    assert sorted(run.state for run in states) == [RunState.QUEUED, RunState.SCHEDULED, RunState.SCHEDULED]
    assert [run.pending_reason for run in states if run.state == RunState.QUEUED] == ["team ml's quota: 2 of 2 CPUs in use"]


def test_the_reservation_uses_the_running_jobs_estimate(app):
    worker_register(name="w1", hostname="h", queue="q", cpu_slots=1, gpus=[])
    project = ProjectFactory()
    for _ in range(3):
        finished(project, minutes=3)
    busy = submit(project, max_minutes=60)
    Scheduler(app=app).tick()  # busy takes the only slot
    Run.objects.filter(id=busy.id).update(state=RunState.RUNNING, started_at=timezone.now())
    waiting = submit(project, max_minutes=60)

    Scheduler(app=app).tick()

    waiting.refresh_from_db()
    assert waiting.state == RunState.QUEUED
    assert waiting.pending_reason.endswith("next to start: w1 is reserved for it in about 3 min"), waiting.pending_reason

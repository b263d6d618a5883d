"""`kiln admin quota` against a real server: set, list, clear; refused to non-admins."""

from __future__ import annotations

import pytest

from webapp.accounts.tokens import token_create
from webapp.client import cli
from webapp.cluster.models import Quota

from ..webapp.factories import TeamFactory, UserFactory


@pytest.fixture
def as_admin(server, monkeypatch):
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", token_create(user=admin, name="cli")[1])
    return server


def test_set_a_users_quota_then_change_one_limit(as_admin, capsys):
    assert cli.main(["admin", "quota", "set", "--user", "grace", "--gpus", "4", "--runs", "10"]) == 0
    assert capsys.readouterr().out.strip() == "Quota of user grace: gpus 4, runs 10"

    assert cli.main(["admin", "quota", "set", "--user", "grace", "--cpus", "16", "--memory-gb", "64.5"]) == 0
    quota = Quota.objects.get(user__username="grace")
    assert (quota.gpus, quota.cpus, quota.memory_gb, quota.runs) == (4, 16, 64.5, 10)


def test_none_removes_one_limit(as_admin, capsys):
    cli.main(["admin", "quota", "set", "--user", "grace", "--gpus", "4", "--runs", "10"])

    assert cli.main(["admin", "quota", "set", "--user", "grace", "--gpus", "none", "--gpu-hours-per-week", "40"]) == 0

    quota = Quota.objects.get(user__username="grace")
    assert (quota.gpus, quota.runs, quota.gpu_hours_per_week) == (None, 10, 40.0)


def test_team_quota_list_and_clear(as_admin, capsys):
    TeamFactory(slug="ml")
    cli.main(["admin", "quota", "set", "--team", "ml", "--gpus", "8"])
    cli.main(["admin", "quota", "set", "--user", "grace", "--runs", "2"])
    capsys.readouterr()

    assert cli.main(["admin", "quota", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["FOR", "NAME", "GPUS", "CPUS", "MEMORY", "GB", "RUNS", "GPU-HOURS/WEEK"]
    assert lines[1].split() == ["user", "grace", "-", "-", "-", "2", "-"]
    assert lines[2].split() == ["team", "ml", "8", "-", "-", "-", "-"]

    assert cli.main(["admin", "quota", "clear", "--team", "ml"]) == 0
    assert list(Quota.objects.values_list("user__username", flat=True)) == ["grace"]


def test_bad_values_are_refused_before_anything_is_sent(as_admin, capsys):
    with pytest.raises(SystemExit):
        cli.main(["admin", "quota", "set", "--user", "grace", "--gpus", "-2"])
    with pytest.raises(SystemExit):
        cli.main(["admin", "quota", "set", "--user", "grace", "--team", "ml", "--gpus", "1"])  # one or the other
    assert cli.main(["admin", "quota", "set", "--user", "grace"]) == 2
    assert not Quota.objects.exists()


def test_an_unknown_user_is_one_line_on_stderr(as_admin, capsys):
    assert cli.main(["admin", "quota", "set", "--user", "nobody", "--gpus", "1"]) == 1
    assert capsys.readouterr().err.strip() == "kiln: error: No user named 'nobody'"


def test_a_non_admin_is_refused(server, monkeypatch, capsys):
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)

    assert cli.main(["admin", "quota", "set", "--user", "grace", "--gpus", "100"]) == 1

    assert "Only an admin may see or change quotas" in capsys.readouterr().err
    assert not Quota.objects.exists()

"""Quotas in the Django admin: listed with their owner, added with who set them, one owner exactly."""

from __future__ import annotations

import pytest
from django.test import Client

from webapp.cluster.models import Quota

from .factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    return client


def test_an_admin_adds_a_users_quota_in_the_admin(admin_client):
    alice = UserFactory(username="alice")

    response = admin_client.post("/admin/cluster/quota/add/", {"user": alice.id, "gpus": "4", "runs": "10",
                                                                "cpus": "", "memory_gb": "", "gpu_hours_per_week": ""})

    assert response.status_code == 302, response.content.decode()[:2000]
    quota = Quota.objects.get(user=alice)
    assert (quota.gpus, quota.runs, quota.cpus, quota.updated_by.username) == (4, 10, None, "root")
    assert "user alice" in admin_client.get("/admin/cluster/quota/").content.decode()


def test_a_quota_for_both_or_neither_is_refused(admin_client):
    alice, team = UserFactory(), TeamFactory()

    both = admin_client.post("/admin/cluster/quota/add/", {"user": alice.id, "team": team.id, "gpus": "1"})
    neither = admin_client.post("/admin/cluster/quota/add/", {"gpus": "1"})

    assert both.status_code == neither.status_code == 200
    assert "exactly one of them" in both.content.decode()
    assert not Quota.objects.exists()

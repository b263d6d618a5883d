"""/api/admin/quotas: Kiln admins set per-user and per-team limits; everyone else gets 403 and changes nothing."""

from __future__ import annotations

import json

import pytest

from webapp.accounts.tokens import token_create
from webapp.cluster.models import Quota

from ..factories import TeamFactory, UserFactory
from .conftest import Api


class QuotaApi(Api):
    def put(self, path: str, body: dict) -> object:
        return self.client.put(path, json.dumps(body), content_type="application/json", headers=self._headers(None))


@pytest.fixture
def admin(db) -> QuotaApi:
    user = UserFactory(username="root", is_superuser=True, is_staff=True)
    return QuotaApi(token_create(user=user, name="tests")[1])


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def test_admin_sets_a_users_quota_and_reads_it_back(admin, alice):
    response = admin.put("/api/admin/quotas/user/alice", {"gpus": 4, "runs": 10})

    assert response.status_code == 200
    body = response.json()
    assert (body["kind"], body["name"], body["gpus"], body["runs"], body["cpus"]) == ("user", "alice", 4, 10, None)
    assert admin.get("/api/admin/quotas/user/alice").json()["gpus"] == 4
    assert Quota.objects.get(user=alice).updated_by.username == "root"


def test_put_replaces_every_limit_and_patch_changes_only_those_given(admin, alice):
    admin.put("/api/admin/quotas/user/alice", {"gpus": 4, "runs": 10})

    admin.patch("/api/admin/quotas/user/alice", {"cpus": 8, "runs": None})
    patched = Quota.objects.get(user=alice)
    admin.put("/api/admin/quotas/user/alice", {"memory_gb": 64})
    replaced = Quota.objects.get(user=alice)

    assert (patched.gpus, patched.cpus, patched.runs) == (4, 8, None)
    assert (replaced.gpus, replaced.cpus, replaced.memory_gb) == (None, None, 64.0)


def test_team_quota_and_the_list(admin, alice):
    TeamFactory(slug="ml")
    admin.put("/api/admin/quotas/team/ml", {"gpu_hours_per_week": 100.5})
    admin.put("/api/admin/quotas/user/alice", {"gpus": 1})

    listed = admin.get("/api/admin/quotas").json()

    assert [(q["kind"], q["name"]) for q in listed] == [("user", "alice"), ("team", "ml")]
    assert listed[1]["gpu_hours_per_week"] == 100.5


def test_delete_removes_the_quota(admin, alice):
    admin.put("/api/admin/quotas/user/alice", {"gpus": 1})

    assert admin.delete("/api/admin/quotas/user/alice").status_code == 204
    assert not Quota.objects.exists()
    assert admin.get("/api/admin/quotas/user/alice").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"gpus": -1}, "gpus"),
    ({"gpus": 1.5}, "gpus"),
    ({"gpus": True}, "gpus"),
    ({"memory_gb": "lots"}, "memory_gb"),
    ({"runs": 1, "disk": 3}, "disk"),
    ({"gpus": 2**70}, "gpus"),
    ({"memory_gb": 1e308}, "memory_gb"),
])
def test_bad_limits_are_refused_naming_the_field(admin, alice, body, field):
    response = admin.put("/api/admin/quotas/user/alice", body)

    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["fields"]]
    assert not Quota.objects.exists()


def test_a_name_with_a_nul_is_refused(admin):
    assert admin.put("/api/admin/quotas/user/a%00b", {"gpus": 1}).status_code == 422


def test_unknown_user_or_team_is_404(admin):
    assert admin.put("/api/admin/quotas/user/nobody", {"gpus": 1}).status_code == 404
    assert admin.put("/api/admin/quotas/team/nobody", {"gpus": 1}).status_code == 404
    assert admin.put("/api/admin/quotas/group/x", {"gpus": 1}).status_code == 422


def test_non_admins_get_403_and_change_nothing(db, alice):
    team_admin = UserFactory(is_staff=False)
    for user in (alice, team_admin):
        api = QuotaApi(token_create(user=user, name="t")[1])
        assert api.get("/api/admin/quotas").status_code == 403
        assert api.put("/api/admin/quotas/user/alice", {"gpus": 100}).status_code == 403
        assert api.put("/api/admin/quotas/user/nobody", {"gpus": 100}).status_code == 403  # no probing for names
        assert api.delete("/api/admin/quotas/user/alice").status_code == 403
    assert not Quota.objects.exists()


def test_anonymous_gets_401(db):
    assert QuotaApi().get("/api/admin/quotas").status_code == 401

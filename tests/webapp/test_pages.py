"""Anonymous visitors get the login page; the admin can log in; the admin site is guarded."""

import pytest
from django.contrib.auth import get_user_model

from webapp.accounts.services import first_admin_ensure

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_gets_the_login_page_at_root(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Log in to Kiln" in response.content
    assert b'name="csrfmiddlewaretoken"' in response.content


def test_admin_logs_in_and_sees_home(client):
    first_admin_ensure(username="admin", password="correct-horse-battery")
    response = client.post("/accounts/login/", {"username": "admin", "password": "correct-horse-battery"}, follow=True)
    assert response.status_code == 200
    assert b"Welcome, admin" in response.content
    assert client.get("/admin/").status_code == 200


def test_wrong_password_is_refused_and_shows_an_error(client):
    first_admin_ensure(username="admin", password="correct-horse-battery")
    response = client.post("/accounts/login/", {"username": "admin", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert "_auth_user_id" not in client.session


def test_login_form_enforces_csrf():
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    first_admin_ensure(username="admin", password="correct-horse-battery")
    response = strict.post("/accounts/login/", {"username": "admin", "password": "correct-horse-battery"})
    assert response.status_code == 403


def test_admin_site_redirects_anonymous_visitors_to_its_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_first_admin_is_created_only_once():
    created = first_admin_ensure(username="admin", password=None)
    assert created is not None and created.generated_password
    assert get_user_model().objects.get(username="admin").check_password(created.generated_password)
    assert first_admin_ensure(username="other", password="x") is None
    assert get_user_model().objects.count() == 1

"""A new user's first minute, in a real browser: the login page, a wrong password, the admin."""

import pytest

from webapp.accounts.services import first_admin_ensure

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_admin_logs_in_from_the_root_page_and_reaches_the_admin_site(live_server, page, screenshot):
    first_admin_ensure(username="admin", password="browser-test-pw")
    page.goto(live_server.url + "/")
    assert page.title() == "Log in · Kiln"
    screenshot(page, "login")

    page.fill("#id_username", "admin")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text().startswith("Your username and password didn't match")

    page.fill("#id_username", "admin")
    page.fill("#id_password", "browser-test-pw")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Welcome, admin")
    screenshot(page, "home")

    page.get_by_role("link", name="Admin", exact=True).click()
    page.wait_for_selector("#site-name >> text=Kiln administration")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_selector("text=Log in to Kiln")

"""Real headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from services import chromium_path, require

# NOTE: Playwright's sync API keeps an asyncio loop in the test thread, which makes Django
# refuse ORM calls there; the ORM calls in these tests are ordinary synchronous set-up.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    require(path is not None, "chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


def _watch_for_script_errors(page, errors: list[str]):
    """Collect script errors and Content-Security-Policy refusals (Chromium reports those on the console)."""
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    return page


@pytest.fixture
def page(browser):
    """A fresh page; a JavaScript error on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    yield _watch_for_script_errors(context.new_page(), errors)
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def screenshot():
    """Save a named screenshot when KILN_SCREENSHOTS_DIR is set (used to refresh the README's tour)."""
    folder = os.environ.get("KILN_SCREENSHOTS_DIR")

    def take(page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take


@pytest.fixture
def new_page(browser):
    """Open further pages, each in its own context (its own cookies): a teammate, an outsider."""
    contexts = []
    errors: list[str] = []

    def open_page():
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        return _watch_for_script_errors(context.new_page(), errors)

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def login(live_server):
    """Sign a user in through the login form, as a person would."""

    def sign_in(page, username: str, password: str) -> None:
        page.goto(live_server.url + "/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Welcome, " + username)

    return sign_in


@pytest.fixture
def artifacts_in_tmp(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }

"""Real headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import require
from services import chromium_path

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


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshot():
    """Save a named screenshot when KILN_SCREENSHOTS_DIR is set (used to refresh the README's tour)."""
    folder = os.environ.get("KILN_SCREENSHOTS_DIR")

    def take(page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take

"""The script the code editor shows before anything is typed, read from real Chromium, runs as it stands."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PASSWORD = "a-long-browser-pass-42"


def test_the_code_editors_placeholder_is_shown_whole_and_runs(live_server, page, login, tmp_path, monkeypatch, screenshot):
    from engine import track

    user = get_user_model().objects.create_user(username="ada", password=PASSWORD)
    project = Project.objects.create(owner_user=user, slug="first", name="First")
    login(page, "ada", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.id}/submit/")
    page.check("input[name=mode][value=code]")
    editor = page.locator("#f-code")
    expect(editor).to_be_visible()
    shown = editor.evaluate("element => element.placeholder")  # what the browser displays, entities decoded
    lines = shown.splitlines()
    assert lines[0] == "import engine as torch" and len(lines) <= int(editor.get_attribute("rows") or 0)
    screenshot(page, "submit_code_placeholder")

    for name in ("KILN_RUN_DIR", "KILN_EVENTS", "KILN_CONFIG", "KILN_RESUME", "RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(track, "_session", None)
    exec(compile(shown, "the code editor's placeholder", "exec"), {"__name__": "__main__"})  # noqa: S102 -- our own page
    track._session.close()
    metrics = next(tmp_path.glob("kiln-runs/*/metrics.jsonl")).read_text().splitlines()
    assert len(metrics) == 200 and '"loss"' in metrics[-1]

"""Form errors that name their subject, shown together; sweep runs named by their point; run URLs by number."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from webapp.experiments.models import Run
from webapp.experiments.spec import SpecError, error_line, validate_spec
from webapp.projects.models import Project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PASSWORD = "a-long-browser-pass-42"


def _submit(page):
    page.get_by_role("button", name="Submit run").click()


def test_a_yaml_error_and_field_errors_come_together_each_naming_its_subject(live_server, page, login, tmp_path):
    owner = get_user_model().objects.create_user(username="fay", password=PASSWORD)
    project = Project.objects.create(slug="forms", name="Forms", owner_user=owner)
    login(page, "fay", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.id}/submit/")
    page.fill("#f-recipe-optimizer-lr", "0")
    page.fill("#f-params", "lr: [unclosed")
    page.fill("#f-tags", "baseline, first try")
    _submit(page)

    lr_error = page.locator(".has-error:has(#f-recipe-optimizer-lr) .field-error").inner_text()
    assert lr_error == "recipe.optimizer.lr: must be > 0"
    assert page.locator(".has-error:has(#f-params) .field-error").inner_text().startswith("params: not valid YAML")
    tags_error = page.locator(".has-error:has(#f-tags) .field-error").all_inner_texts()
    assert len(tags_error) == 1 and "'first try' is not a tag" in tags_error[0]  # one list entry, not two words
    assert page.locator("#f-tags").input_value() == "baseline, first try"
    assert Run.objects.count() == 0

    with pytest.raises(SpecError) as raised:  # the API and the CLI print SpecError's text: the same line
        validate_spec({"recipe": {"model": "mlp", "optimizer": {"lr": 0}}}, has_code=False)
    assert error_line(raised.value.errors[0]) == lr_error and str(raised.value) == lr_error

    # an upload's problem sits on the upload field
    bad = tmp_path / "notes.txt"
    bad.write_text("not code")
    page.check("input[name=mode][value=code]")
    page.fill("#f-params", "")
    page.fill("#f-tags", "baseline, first-try")
    page.set_input_files("#f-code_file", str(bad))
    _submit(page)
    upload_error = page.locator("#upload-field.has-error .field-error")
    expect(upload_error).to_have_count(1)
    assert upload_error.inner_text() == "code: must be a .py file or a .zip project"  # as the API words it
    assert page.locator(".has-error:has(#f-code) .field-error").count() == 0


def test_sweep_runs_are_named_by_their_point_and_run_urls_use_the_number_shown(live_server, page, login):
    owner = get_user_model().objects.create_user(username="nia", password=PASSWORD)
    project = Project.objects.create(slug="cnn-lab", name="CNN lab", owner_user=owner)
    login(page, "nia", PASSWORD)
    page.goto(f"{live_server.url}/p/{project.id}/submit/")
    page.fill("#f-name", "cnn-baseline")
    page.click("details.sweep summary")
    page.fill("#f-sweep", "method: grid\nparameters:\n  optimizer.lr:\n    values: [0.1, 0.003]")
    _submit(page)
    expect(page.locator(".messages")).to_contain_text("Queued a sweep of 2 runs.")
    names = page.locator("#run-table tbody .name-cell a").all_inner_texts()
    assert sorted(names) == ["cnn-baseline lr=0.003", "cnn-baseline lr=0.1"]

    page.click("#run-table a[title='cnn-baseline lr=0.003']")
    run = Run.objects.get(name="cnn-baseline lr=0.003")
    assert re.fullmatch(rf"{live_server.url}/p/{project.id}/runs/{run.number}/", page.url)
    assert page.locator("h1").inner_text().startswith(f"#{run.number} cnn-baseline lr=0.003")

    moved = page.request.get(f"{live_server.url}/runs/{run.id}/", max_redirects=0)
    assert moved.status == 301 and moved.headers["location"] == f"/p/{project.id}/runs/{run.number}/"
    page.goto(f"{live_server.url}/runs/{run.id}/")  # an old link still lands on the run
    assert page.url.endswith(f"/p/{project.id}/runs/{run.number}/")

    # the delete confirmation shows the slug to type; a wrong one is explained in a sentence
    page.goto(f"{live_server.url}/p/{project.id}/settings/")
    assert "Type cnn-lab to confirm" in page.locator("label[for=id_confirm]").inner_text()
    assert page.locator("#id_confirm").get_attribute("placeholder") == "cnn-lab"
    page.fill("#id_confirm", "cnn")
    page.get_by_role("button", name="Delete project").click()
    assert "Type cnn-lab to delete this project." in page.locator(".field-error, .errorlist").first.inner_text()
    assert Project.objects.filter(id=project.id).exists()

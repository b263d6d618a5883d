"""The submit form's CPUs input: resources.cpus, 1 when left at its default, kept by clone-and-edit."""

import pytest

from webapp.experiments.models import Run

from .test_submit_form import RECIPE_FORM, _post

pytestmark = pytest.mark.django_db


def test_the_cpus_input_sets_resources_cpus_and_a_clone_keeps_it(world):
    page = world.client("owner").get(f"/p/{world.project.id}/submit/").content.decode()
    assert 'name="resources.cpus"' in page and 'id="f-resources-cpus"' in page
    assert world.client("owner").get(f"/p/{world.project.id}/submit/").context["form"].values["resources.cpus"] == "1"

    _post(world, {**RECIPE_FORM, "resources.cpus": "3"})

    run = Run.objects.order_by("-id").first()
    assert run.spec["resources"]["cpus"] == 3 and run.cpus == 3
    clone = world.client("owner").get(f"/p/{world.project.id}/submit/?clone={run.id}").context["form"].values
    assert clone["resources.cpus"] == "3"


def test_a_form_without_the_cpus_input_gets_one_cpu(world):
    _post(world, RECIPE_FORM)

    assert Run.objects.order_by("-id").first().cpus == 1


@pytest.mark.parametrize(("value", "message"), [("0", "must be >= 1"), ("two", "valid integer")])
def test_a_bad_cpu_count_is_shown_next_to_the_input(world, value, message):
    before = Run.objects.count()

    response = _post(world, {**RECIPE_FORM, "resources.cpus": value})

    assert response.status_code == 400 and Run.objects.count() == before
    assert any(message in error for error in response.context["form"].errors["resources.cpus"])

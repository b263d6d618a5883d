"""The submit form: recipe config, code in the editor or as a file, sweeps, clone-and-edit, errors by field."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.experiments.models import Run, Sweep
from webapp.experiments.submit import run_submit

from ..factories import ProjectFactory
from .conftest import SCRIPT, make_zip

pytestmark = pytest.mark.django_db

RECIPE_FORM = {
    "mode": "recipe", "name": "", "recipe.model": "cnn", "recipe.dataset": "digits", "recipe.optimizer.name": "sgd",
    "recipe.optimizer.lr": "0.05", "recipe.optimizer.momentum": "0.9", "recipe.optimizer.weight_decay": "0",
    "recipe.scheduler.name": "cosine", "recipe.scheduler.step_size": "1", "recipe.scheduler.gamma": "0.1",
    "recipe.epochs": "3", "recipe.batch_size": "32", "recipe.hidden_size": "64", "recipe.layers": "2",
    "recipe.dropout": "0.1", "recipe.seed": "7", "params": "", "resources.gpus": "1", "resources.max_minutes": "30",
    "priority": "5", "tags": "baseline, cnn", "notes": "first try", "sweep": "",
}


def _post(world, data, files=None, actor="owner", query=""):
    client = world.client(actor)
    return client.post(f"/p/{world.project.id}/submit/{query}", {**data, **(files or {})})


def test_form_shows_every_recipe_field_with_defaults(world):
    page = world.client("editor").get(f"/p/{world.project.id}/submit/").content.decode()
    for name in ("recipe.model", "recipe.dataset", "recipe.optimizer.name", "recipe.optimizer.lr", "recipe.scheduler.name",
                 "recipe.epochs", "recipe.batch_size", "recipe.hidden_size", "recipe.layers", "params",
                 "resources.gpus", "resources.max_minutes", "priority", "tags", "sweep", "code", "code_file"):
        assert f'name="{name}"' in page, name
    assert '<option value="gpt">gpt</option>' in page and 'value="0.001"' in page


def test_recipe_submit_creates_the_run_with_the_config(world):
    before = Run.objects.count()
    response = _post(world, RECIPE_FORM)
    run = Run.objects.order_by("-id").first()
    assert Run.objects.count() == before + 1
    assert response.status_code == 302 and response["Location"] == f"/p/{run.project_id}/runs/{run.number}/"
    recipe = run.spec["recipe"]
    assert (recipe["model"], recipe["optimizer"]["name"], recipe["optimizer"]["lr"], recipe["epochs"]) == ("cnn", "sgd", 0.05, 3)
    assert recipe["scheduler"]["name"] == "cosine" and recipe["dropout"] == 0.1
    assert (run.gpus, run.max_minutes, run.priority, run.notes) == (1, 30, 5, "first try")
    assert sorted(run.tags.values_list("name", flat=True)) == ["baseline", "cnn"]
    assert run.owner == world.users["owner"] and run.name == "cnn-digits"


def test_the_memory_input_sets_the_runs_limit_and_empty_means_the_default(world, settings):
    page = world.client("owner").get(f"/p/{world.project.id}/submit/").content.decode()
    assert 'name="resources.memory_gb"' in page and f'placeholder="{settings.CONFIG.run_memory_gb:g} (default)"' in page
    _post(world, {**RECIPE_FORM, "resources.memory_gb": "0.5"})
    run = Run.objects.order_by("-id").first()
    assert run.memory_gb == 0.5 and run.spec["resources"]["memory_gb"] == 0.5
    clone = world.client("owner").get(f"/p/{world.project.id}/submit/?clone={run.id}").context["form"].values
    assert clone["resources.memory_gb"] == "0.5"
    _post(world, {**RECIPE_FORM, "resources.memory_gb": ""})
    assert Run.objects.order_by("-id").first().memory_gb == settings.CONFIG.run_memory_gb


def test_code_from_the_editor_becomes_a_code_run(world):
    response = _post(world, {"mode": "code", "code": SCRIPT.decode().replace("\n", "\r\n"), "code_filename": "train.py",
                             "params": "lr: 0.1\nwarmup: 10", "name": "edited"})
    run = Run.objects.order_by("-id").first()
    assert response.status_code == 302
    assert (run.kind, run.entrypoint, run.name, run.params) == ("code", "train.py", "edited", {"lr": 0.1, "warmup": 10})
    page = world.client("owner").get(f"/runs/{run.id}/", follow=True).content.decode()
    assert "track.log" in page and 'data-highlight="python"' in page


def test_uploaded_py_and_zip_become_code_runs(world):
    _post(world, {"mode": "code"}, {"code_file": SimpleUploadedFile("fit.py", SCRIPT)})
    assert Run.objects.order_by("-id").first().entrypoint == "fit.py"
    archive = make_zip({"pkg/train.py": SCRIPT, "pkg/util.py": b"X = 1\n"})
    response = _post(world, {"mode": "code", "entrypoint": "pkg/train.py"}, {"code_file": SimpleUploadedFile("p.zip", archive)})
    run = Run.objects.order_by("-id").first()
    assert response.status_code == 302 and run.code_path.endswith(".zip") and run.entrypoint == "pkg/train.py"
    page = world.client("viewer").get(f"/runs/{run.id}/", follow=True).content.decode()
    assert "pkg/util.py" in page and "pkg/train.py" in page


def test_a_sweep_queues_one_run_per_point(world):
    sweep = "method: grid\nparameters:\n  optimizer.lr:\n    values: [0.1, 0.01, 0.001]\n"
    response = _post(world, {**RECIPE_FORM, "sweep": sweep})
    assert response.status_code == 302 and response["Location"] == f"/p/{world.project.id}/"
    assert Sweep.objects.get().runs.count() == 3


@pytest.mark.parametrize(("data", "field", "message"), [
    ({**RECIPE_FORM, "recipe.epochs": "0"}, "recipe.epochs", "must be >= 1"),
    ({**RECIPE_FORM, "recipe.optimizer.lr": "fast"}, "recipe.optimizer.lr", "valid number"),
    ({**RECIPE_FORM, "recipe.model": "transformer-xl"}, "recipe.model", "Input should be"),
    ({**RECIPE_FORM, "resources.gpus": "-1"}, "resources.gpus", "must be >= 0"),
    ({**RECIPE_FORM, "resources.memory_gb": "0"}, "resources.memory_gb", "more than 0 and at most 4096 GB"),
    ({**RECIPE_FORM, "priority": "1000"}, "priority", "must be <= 100"),
    ({**RECIPE_FORM, "tags": "ok, not ok!"}, "tags", "'not ok!' is not a tag"),
    ({**RECIPE_FORM, "params": "- a\n- list"}, "params", "must be a mapping"),
    ({**RECIPE_FORM, "params": "lr: [unclosed"}, "params", "not valid YAML"),
    ({**RECIPE_FORM, "sweep": "parameters:\n  nonsense.field:\n    values: [1]"}, "sweep", "is not a recipe field"),
    ({"mode": "code"}, "code", "Write the script here"),
    ({"mode": "code", "code": "print(1)", "code_filename": "../evil.sh"}, "code_filename", "Name the script"),
])
def test_bad_input_is_shown_next_to_its_field_and_creates_nothing(world, data, field, message):
    runs, sweeps = Run.objects.count(), Sweep.objects.count()
    response = _post(world, data)
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert any(message in error for error in form.errors[field]), form.errors[field]
    content = response.content.decode()
    assert 'class="field-error"' in content and "The run was not submitted" in content
    assert (Run.objects.count(), Sweep.objects.count()) == (runs, sweeps)
    # what the user typed is still there
    if "recipe.epochs" in data:
        assert f'value="{data["recipe.epochs"]}"' in content


def test_a_bad_zip_upload_is_an_error_on_the_code_field(world):
    runs = Run.objects.count()
    response = _post(world, {"mode": "code", "entrypoint": "missing.py"},
                     {"code_file": SimpleUploadedFile("p.zip", make_zip({"main.py": SCRIPT}))})
    assert response.status_code == 400 and "entrypoint" in response.context["form"].errors
    response = _post(world, {"mode": "code"}, {"code_file": SimpleUploadedFile("notes.txt", b"hello")})
    assert "must be a .py file" in response.context["form"].errors["code_file"][0]
    assert Run.objects.count() == runs


def test_clone_prefills_the_form_from_a_run_and_records_the_origin(world):
    page = world.client("editor").get(f"/p/{world.project.id}/submit/?clone={world.run.id}")
    values = page.context["form"].values
    assert values["recipe.optimizer.lr"] == "0.01" and values["name"] == "baseline" and values["tags"] == "baseline"
    assert values["mode"] == "recipe"
    response = _post(world, {**RECIPE_FORM, "recipe.optimizer.lr": "0.02"}, actor="editor", query=f"?clone={world.run.id}")
    clone = Run.objects.order_by("-id").first()
    assert response.status_code == 302 and clone.cloned_from == world.run
    assert clone.spec["recipe"]["optimizer"]["lr"] == 0.02


def test_clone_of_a_code_run_puts_its_script_in_the_editor(world):
    page = world.client("owner").get(f"/p/{world.project.id}/submit/?clone={world.code_run.id}")
    form = page.context["form"]
    assert form.mode == "code" and form.values["code"] == SCRIPT.decode() and form.values["code_filename"] == "train.py"
    assert "lr: 0.1" in form.values["params"]


def test_clone_of_a_zip_run_reuses_its_zip_unless_a_new_file_is_given(world):
    _post(world, {"mode": "code", "entrypoint": "pkg/train.py"},
          {"code_file": SimpleUploadedFile("p.zip", make_zip({"pkg/train.py": SCRIPT}))})
    zipped = Run.objects.order_by("-id").first()
    page = world.client("owner").get(f"/p/{world.project.id}/submit/?clone={zipped.id}").content.decode()
    assert "reuses run #" in page
    response = _post(world, {"mode": "code", "entrypoint": "pkg/train.py"}, query=f"?clone={zipped.id}")
    clone = Run.objects.order_by("-id").first()
    assert response.status_code == 302 and clone.code_sha256 == zipped.code_sha256 and clone.cloned_from == zipped


def test_cloning_a_run_you_cannot_see_is_404(world):
    other = ProjectFactory()
    hidden = run_submit(user=other.owner_user, project=other, spec={"recipe": {"model": "mlp"}}).runs[0]
    assert world.client("owner").get(f"/p/{world.project.id}/submit/?clone={hidden.id}").status_code == 404

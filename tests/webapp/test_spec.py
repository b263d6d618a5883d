"""The spec validator names the bad field and expands sweeps deterministically."""

import pytest

from webapp.experiments.spec import SpecError, expand_points, flat_params, parse_spec_text, validate_spec


def _fields(excinfo):
    return [e["field"] for e in excinfo.value.errors]


def test_minimal_recipe_spec_gets_defaults():
    spec = validate_spec({"recipe": {"model": "mlp"}}, has_code=False)
    assert spec.recipe.dataset == "digits" and spec.recipe.optimizer.name == "adam"
    assert spec.resources.gpus == 0 and spec.resources.max_minutes == 60


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"recipe": {"model": "resnet"}}, "recipe.model"),
        ({"recipe": {"model": "mlp", "epochs": 0}}, "recipe.epochs"),
        ({"recipe": {"model": "mlp", "learning_rate": 3}}, "recipe.learning_rate"),
        ({"recipe": {"model": "mlp", "optimizer": {"lr": -1}}}, "recipe.optimizer.lr"),
        ({"recipe": {"model": "mlp"}, "resources": {"gpus": -1}}, "resources.gpus"),
        ({"recipe": {"model": "mlp"}, "colour": "red"}, "colour"),
        ({"recipe": {"model": "mlp"}, "tags": ["ok", "not ok!"]}, "tags.1"),
        ({}, "recipe"),
    ],
)
def test_invalid_specs_name_the_field(data, field):
    with pytest.raises(SpecError) as excinfo:
        validate_spec(data, has_code=False)
    assert field in _fields(excinfo)


def test_code_and_recipe_together_are_refused():
    with pytest.raises(SpecError) as excinfo:
        validate_spec({"recipe": {"model": "mlp"}}, has_code=True)
    assert _fields(excinfo) == ["recipe"]


def test_yaml_errors_give_the_line():
    with pytest.raises(SpecError, match=r"at line \d+, column \d+"):
        parse_spec_text("recipe:\n  model: [mlp\n")
    with pytest.raises(SpecError, match="mapping"):
        parse_spec_text("- a list")


def test_grid_sweep_expands_to_every_combination_in_a_stable_order():
    spec = validate_spec(
        {"recipe": {"model": "mlp"}, "sweep": {"parameters": {"optimizer.lr": {"values": [0.1, 0.01]}, "batch_size": {"values": [32, 64, 128]}}}},
        has_code=False,
    )
    points = expand_points(spec)
    assert len(points) == 6
    assert points[0] == {"batch_size": 32, "optimizer.lr": 0.1}
    assert points == expand_points(spec)


def test_random_sweep_is_reproducible_and_respects_ranges():
    data = {"params": {"x": 1}, "sweep": {"method": "random", "max_runs": 20, "seed": 7,
            "parameters": {"lr": {"min": 1e-4, "max": 1e-1, "distribution": "log_uniform"}}}}
    spec = validate_spec(data, has_code=True)
    points = expand_points(spec)
    assert len(points) == 20 and all(1e-4 <= p["lr"] <= 1e-1 for p in points)
    assert points == expand_points(validate_spec(data, has_code=True))


def test_sweep_over_an_unknown_recipe_field_or_bad_value_is_refused():
    with pytest.raises(SpecError) as excinfo:
        validate_spec({"recipe": {"model": "mlp"}, "sweep": {"parameters": {"optimizer.beta": {"values": [1]}}}}, has_code=False)
    assert _fields(excinfo) == ["sweep.parameters.optimizer.beta"]
    with pytest.raises(SpecError) as excinfo:
        validate_spec({"recipe": {"model": "mlp"}, "sweep": {"parameters": {"epochs": {"values": [5, -1]}}}}, has_code=False)
    assert _fields(excinfo)[0].startswith("sweep.parameters.recipe.epochs")


def test_grid_sweep_needs_values():
    with pytest.raises(SpecError, match="explicit values"):
        validate_spec({"params": {}, "sweep": {"parameters": {"lr": {"min": 0, "max": 1}}}}, has_code=True)


def test_flat_params_of_a_recipe_use_dotted_paths():
    params = flat_params(validate_spec({"recipe": {"model": "cnn", "optimizer": {"lr": 0.5}}}, has_code=False))
    assert params["model"] == "cnn" and params["optimizer.lr"] == 0.5 and params["scheduler.name"] == "none"


@pytest.mark.parametrize("memory_gb", [0, -1, 4097, float("nan"), True, "lots", [1]])
def test_a_bad_memory_size_is_refused_naming_resources_memory_gb(memory_gb):
    with pytest.raises(SpecError) as excinfo:
        validate_spec({"recipe": {"model": "mlp"}, "resources": {"memory_gb": memory_gb}}, has_code=False)
    assert _fields(excinfo) == ["resources.memory_gb"]


def test_memory_gb_is_optional_and_takes_fractions():
    assert validate_spec({"recipe": {"model": "mlp"}}, has_code=False).resources.memory_gb is None
    spec = validate_spec({"recipe": {"model": "mlp"}, "resources": {"memory_gb": 0.5}}, has_code=False)
    assert spec.resources.memory_gb == 0.5
    with pytest.raises(SpecError, match="at most 4096 GB"):
        validate_spec({"recipe": {"model": "mlp"}, "resources": {"memory_gb": 5000}}, has_code=False)


@pytest.mark.parametrize("cpus", [0, -1, 1025, 1.5, True, "two", [1], None])
def test_a_bad_cpu_count_is_refused_naming_resources_cpus(cpus):
    with pytest.raises(SpecError) as excinfo:
        validate_spec({"recipe": {"model": "mlp"}, "resources": {"cpus": cpus}}, has_code=False)
    assert _fields(excinfo) == ["resources.cpus"]


def test_cpus_default_to_one_and_are_stored_in_the_spec():
    assert validate_spec({"recipe": {"model": "mlp"}}, has_code=False).resources.cpus == 1
    spec = validate_spec({"recipe": {"model": "mlp"}, "resources": {"cpus": 8}}, has_code=False)
    assert spec.model_dump(mode="json")["resources"]["cpus"] == 8

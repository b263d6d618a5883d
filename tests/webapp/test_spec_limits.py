"""One size and depth limit on specs: YAML or JSON text, a parsed dict, the submit form; errors name `spec`."""

from __future__ import annotations

import pytest

from webapp.experiments.spec import SpecError, parse_spec_text, validate_spec
from webapp.experiments.spec_limits import MAX_SPEC_BYTES, MAX_SPEC_DEPTH, MAX_SPEC_NODES

ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10) if prev else ', '.join(['1'] * 10)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)  # 10**8 values from 80 aliases


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _message(excinfo) -> str:
    assert [e["field"] for e in excinfo.value.errors] == ["spec"]
    return excinfo.value.errors[0]["message"]


@pytest.mark.parametrize("text", ["[" * 100_000, "{a: " * 5_000, "a:\n" + "".join(" " * i + "- \n" for i in range(1, 300))])
def test_yaml_nested_past_the_limit_is_refused_without_recursing(text):
    with pytest.raises(SpecError) as excinfo:
        parse_spec_text(text)
    assert _message(excinfo) == f"is nested more than {MAX_SPEC_DEPTH} levels deep"


def test_yaml_at_the_depth_limit_still_parses():
    text = "a: " + "[" * (MAX_SPEC_DEPTH - 1) + "]" * (MAX_SPEC_DEPTH - 1)
    assert parse_spec_text(text)["a"] == _nested_list(MAX_SPEC_DEPTH - 1)


def _nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("text", [ALIAS_BOMB, "a: &x [*x]"], ids=["alias-bomb", "cycle"])
def test_yaml_aliases_cannot_make_a_small_text_a_huge_or_endless_tree(text):
    with pytest.raises(SpecError) as excinfo:
        parse_spec_text(text)
    assert _message(excinfo) in (f"has more than {MAX_SPEC_NODES:,} values", f"is nested more than {MAX_SPEC_DEPTH} levels deep")


def test_text_past_the_size_limit_is_refused():
    with pytest.raises(SpecError) as excinfo:
        parse_spec_text("#" * (MAX_SPEC_BYTES + 1))
    assert "larger than" in _message(excinfo)


def test_invalid_yaml_still_says_where():
    with pytest.raises(SpecError) as excinfo:
        parse_spec_text("a: [")
    assert "not valid YAML or JSON at line" in _message(excinfo)


@pytest.mark.parametrize("data", [
    {"recipe": {"model": "mlp"}, "params": _nested(MAX_SPEC_DEPTH + 1)},
    {"recipe": {"model": "mlp"}, "tags": list(range(MAX_SPEC_NODES))},
])
def test_a_parsed_spec_past_the_limits_is_refused_before_validation(data):
    with pytest.raises(SpecError) as excinfo:
        validate_spec(data, has_code=False)
    assert _message(excinfo).startswith(("is nested", "has more than"))


def test_the_submit_form_shows_the_limit_next_to_the_params_field(client, django_user_model):
    from webapp.projects.services import project_create

    user = django_user_model.objects.create_user("ada", password="x")
    project = project_create(user=user, name="Deep")
    client.force_login(user)
    response = client.post(f"/p/{project.id}/submit/", {"mode": "recipe", "recipe.model": "mlp", "params": "[" * 3000})
    assert response.status_code == 400
    assert any("nested more than" in error for error in response.context["form"].errors["params"])

"""The submit form: inputs named by their spec path, so every SpecError lands next to its input.

The recipe's inputs are generated from `RecipeSpec` itself (choices from its Literal types,
defaults from its fields), so the form never drifts from what the service validates.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from webapp.experiments.code import MAX_CODE_BYTES
from webapp.experiments.models import Run
from webapp.experiments.spec import RecipeSpec, SpecError, error_line, parse_spec_text, validate_spec
from webapp.experiments.submit import CodeUpload

RECIPE = "recipe"
CODE = "code"
TOP_LEVEL_FIELDS = (
    "mode", "name", "code", "code_filename", "entrypoint", "params", "resources.gpus", "resources.cpus",
    "resources.max_minutes", "resources.memory_gb", "priority", "tags", "notes", "sweep",
    "resources.nodes", "distributed.processes_per_node", "code_file",
)
# The code editor's placeholder: a whole script that runs as it stands, in Kiln or anywhere else
# (tests/test_samples.py runs it, as it runs the README's samples).
CODE_PLACEHOLDER = """import engine as torch
import engine.nn as nn
import engine.nn.functional as F
from engine import track

lr = track.config.get("lr", 0.05)  # the run's Params (below) override it
model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=lr)
x = torch.randn(256, 4)
y = x.sum(dim=1, keepdim=True)
for step in range(200):
    loss = F.mse_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    track.log({"loss": loss.item()}, step=step)
track.save_checkpoint({"model": model.state_dict()}, step=step)
"""
_LABELS = {"lr": "Learning rate", "gamma": "Gamma (decay factor)", "step_size": "Step size (epochs)"}
_GROUP_TITLES = {"": "Model and data", "optimizer": "Optimizer", "scheduler": "Learning-rate schedule"}


@dataclass(frozen=True)
class SpecField:
    path: str  # the spec path, e.g. "recipe.optimizer.lr"; also the input's name
    label: str
    choices: tuple[str, ...]
    default: str
    numeric: bool

    @property
    def html_id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass(frozen=True)
class BoundField:
    field: SpecField
    value: str
    errors: list[str]


def recipe_fields(model: type[BaseModel] = RecipeSpec, prefix: str = RECIPE) -> list[SpecField]:
    """One input per leaf of the recipe spec, in declaration order."""
    fields = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields.extend(recipe_fields(annotation, path))
            continue
        choices = tuple(str(c) for c in typing.get_args(annotation)) if typing.get_origin(annotation) is typing.Literal else ()
        default = "" if info.default is PydanticUndefined else str(info.default)
        if not default and choices:
            default = choices[0]
        numeric = annotation in (int, float)
        label = _LABELS.get(name, name.replace("_", " ").capitalize())
        fields.append(SpecField(path, label, choices, default, numeric))
    return fields


RECIPE_FIELDS = recipe_fields()
FIELD_PATHS = {f.path for f in RECIPE_FIELDS} | set(TOP_LEVEL_FIELDS)


class SubmitForm:
    """Parses the posted form into (spec, code) and keeps every error by the input it belongs to."""

    def __init__(
        self,
        data: QueryDict | None = None,
        files: Any = None,
        *,
        clone_of: Run | None = None,
    ):
        self.clone_of = clone_of
        self.bound = data is not None
        self.values: dict[str, str] = initial_values(clone_of) if data is None else {
            path: data.get(path, "") for path in FIELD_PATHS
        }
        self.upload: UploadedFile | None = files.get("code_file") if files else None
        self.errors: dict[str, list[str]] = {}
        self.non_field_errors: list[str] = []

    @property
    def mode(self) -> str:
        return CODE if self.values.get("mode") == CODE else RECIPE

    @property
    def clone_code_kind(self) -> str:
        """"zip" when a cloned run's zip is reused unless a new file is given (zips do not fit the editor)."""
        if self.clone_of is not None and self.clone_of.code_path.endswith(".zip"):
            return "zip"
        return ""

    def spec_and_code(self) -> tuple[dict[str, Any], CodeUpload | None]:
        """The spec dict and the code to hand to `run_submit`; SpecError for what the form itself can tell."""
        spec: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        value = self.values
        if value["name"].strip():
            spec["name"] = value["name"].strip()
        for path in ("resources.gpus", "resources.cpus", "resources.max_minutes", "resources.memory_gb", "priority",
                     "distributed.processes_per_node"):
            if value[path].strip():
                _set(spec, path, value[path].strip())
        nodes = value["resources.nodes"].strip()
        if nodes and nodes != "1":  # several nodes: the GPU and CPU inputs size each of them
            resources = spec.setdefault("resources", {})
            resources["nodes"] = nodes
            for one, each in (("gpus", "gpus_per_node"), ("cpus", "cpus_per_node")):
                if one in resources:
                    resources[each] = resources.pop(one)
        tags = tag_list(value["tags"])
        if tags:
            spec["tags"] = tags
        if value["notes"].strip():
            spec["notes"] = value["notes"].replace("\r\n", "\n")
        for path in ("params", "sweep"):
            if value[path].strip():
                try:
                    spec[path] = parse_spec_text(value[path])
                except SpecError as exc:
                    errors.extend({"field": path, "message": e["message"]} for e in exc.errors)
        code = None
        if self.mode == RECIPE:
            for field in RECIPE_FIELDS:
                if value[field.path].strip():
                    _set(spec, field.path, value[field.path].strip())
        else:
            if value["entrypoint"].strip():
                spec["entrypoint"] = value["entrypoint"].strip()
            try:
                code = self._code()
            except SpecError as exc:
                errors.extend(exc.errors)
        if errors:
            # what could be read is checked too, so one submit shows every problem (a YAML error with the rest)
            unread = {e["field"] for e in errors}
            try:
                validate_spec({k: v for k, v in spec.items() if k not in unread}, has_code=self.mode == CODE)
            except SpecError as exc:
                errors.extend(e for e in exc.errors if e["field"].split(".")[0] not in unread and e["field"] != RECIPE)
            raise SpecError(errors)
        return spec, code

    def _code(self) -> CodeUpload:
        if self.upload is not None:
            if self.upload.size is not None and self.upload.size > MAX_CODE_BYTES:
                raise SpecError([{"field": "code_file", "message": f"The file is larger than {MAX_CODE_BYTES:,} bytes."}])
            return CodeUpload(filename=self.upload.name or "upload", data=self.upload.read())
        text = self.values["code"].replace("\r\n", "\n")
        if text.strip():
            filename = self.values["code_filename"].strip() or "main.py"
            if not filename.endswith(".py") or "/" in filename:
                raise SpecError([{"field": "code_filename", "message": "Name the script like train.py."}])
            return CodeUpload(filename=filename, data=text.encode())
        if self.clone_code_kind == "zip" and self.clone_of is not None:
            with default_storage.open(self.clone_of.code_path, "rb") as handle:
                return CodeUpload(filename="code.zip", data=handle.read())
        raise SpecError([{"field": "code", "message": "Write the script here, or upload a .py file or a .zip project."}])

    def add_errors(self, errors: list[dict[str, str]]) -> None:
        """File each {field, message} under the input it names (or its nearest enclosing input)."""
        for error in errors:
            path = error["field"]
            if path == RECIPE and self.mode == CODE:
                path = "code"
            if path == "code" and self.upload is not None:
                path = "code_file"  # the problem is with the file given, so it sits on the upload
            target = _nearest_input(path)
            if target is None:
                self.non_field_errors.append(error_line(error))
            else:
                self.errors.setdefault(target, []).append(error_line(error))

    def field(self, path: str) -> BoundField:
        spec_field = next((f for f in RECIPE_FIELDS if f.path == path), None) or SpecField(path, path, (), "", False)
        return BoundField(spec_field, self.values.get(path, ""), self.errors.get(path, []))

    def recipe_groups(self) -> list[tuple[str, list[BoundField]]]:
        groups: dict[str, list[BoundField]] = {}
        for spec_field in RECIPE_FIELDS:
            parts = spec_field.path.split(".")
            group = parts[1] if len(parts) > 2 else ""
            groups.setdefault(group, []).append(self.field(spec_field.path))
        return [(_GROUP_TITLES.get(name, name.capitalize()), fields) for name, fields in groups.items()]

    @property
    def memory_default(self) -> str:
        """The placeholder of the memory input: what an empty one means."""
        return f"{settings.CONFIG.run_memory_gb:g} (default)"

    @property
    def code_placeholder(self) -> str:
        return CODE_PLACEHOLDER

    @property
    def inputs(self) -> dict[str, BoundField]:
        """The non-recipe inputs for templates, dots as underscores: `form.inputs.resources_gpus`."""
        return {path.replace(".", "_"): self.field(path) for path in TOP_LEVEL_FIELDS}


def initial_values(run: Run | None) -> dict[str, str]:
    """The inputs' starting values: the recipe's defaults, or everything a cloned run was submitted with."""
    values = dict.fromkeys(FIELD_PATHS, "")
    values.update({field.path: field.default for field in RECIPE_FIELDS})
    values.update({"mode": RECIPE, "resources.gpus": "0", "resources.cpus": "1", "resources.max_minutes": "60",
                   "resources.nodes": "1",
                   "priority": "0"})
    if run is None:
        return values
    spec = run.spec
    values["mode"] = CODE if run.kind == "code" else RECIPE
    values["name"] = str(spec.get("name") or "")
    for field in RECIPE_FIELDS:
        found = _get(spec, field.path)
        if found is not None:
            values[field.path] = str(found)
    resources = spec.get("resources") or {}
    values["resources.gpus"] = str(resources.get("gpus", run.gpus))
    values["resources.cpus"] = str(resources.get("cpus", run.cpus))
    values["resources.max_minutes"] = str(resources.get("max_minutes", run.max_minutes))
    values["resources.nodes"] = str(run.nodes)
    values["distributed.processes_per_node"] = str(run.processes_per_node) if spec.get("distributed") else ""
    values["resources.memory_gb"] = str(resources.get("memory_gb", ""))  # empty: the default of the day
    values["priority"] = str(spec.get("priority", run.priority))
    values["tags"] = ", ".join(spec.get("tags") or [])
    values["notes"] = str(spec.get("notes") or "")
    if spec.get("params"):
        values["params"] = yaml.safe_dump(spec["params"], sort_keys=False)
    if run.code_path.endswith(".py"):
        values["code_filename"] = run.entrypoint or "main.py"
        with default_storage.open(run.code_path, "rb") as handle:
            values["code"] = handle.read().decode("utf-8", errors="replace")
    elif run.code_path:
        values["entrypoint"] = run.entrypoint
    return values


def tag_list(text: str) -> list[str]:
    """Tags as typed: comma-separated (a tag never holds a comma); spaces inside one stay, for the spec to refuse."""
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _nearest_input(path: str) -> str | None:
    parts = path.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in FIELD_PATHS:
            return candidate
        parts.pop()
    return None


def _set(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value


def _get(source: dict[str, Any], path: str) -> Any:
    found: Any = source
    for key in path.split("."):
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return found


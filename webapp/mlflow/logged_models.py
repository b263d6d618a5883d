"""MLflow 3's logged models (`mlflow.<flavor>.log_model`): each belongs to the run that logged it.

Its files are the run's artifacts under `models/<model id>/` (uploaded by the client through the proxied
artifact endpoints to the model's artifact_uri), so the run page shows them and deleting the run deletes
them. Access is the run's, through the one permission check (`run_for`).
"""

from __future__ import annotations

import functools
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from webapp.experiments.external import MAX_KEY_CHARS, MAX_PARAM_CHARS, MAX_TAG_CHARS
from webapp.experiments.models import Metric, Run
from webapp.experiments.results import artifacts_delete
from webapp.experiments.selectors import run_for
from webapp.ids import parse_id
from webapp.mlflow.entities import artifact_uri, double_out, millis
from webapp.mlflow.errors import MlflowError
from webapp.mlflow.models import LoggedModel, LoggedModelStatus
from webapp.projects.permissions import Access, require_access

MAX_NAME_CHARS = 250
_ID = re.compile(r"m-[0-9a-f]{32}")


def logged_model_create(
    *, user: User, run: Run, name: str, model_type: str = "", params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> LoggedModel:
    """A pending logged model of `run` (needs edit access); the client uploads its files, then finalizes it."""
    require_access(user, run.project, Access.EDIT)
    name = name.strip() or "model"
    if len(name) > MAX_NAME_CHARS or "/" in name or "\0" in name:
        raise ValidationError({"name": f"A model name has 1-{MAX_NAME_CHARS} characters and no '/'."})
    params, tags = dict(params or {}), dict(tags or {})
    _check(params, MAX_PARAM_CHARS, "param")
    _check(tags, MAX_TAG_CHARS, "tag")
    return LoggedModel.objects.create(model_id=f"m-{secrets.token_hex(16)}", run=run, creator=user, name=name,
                                      model_type=model_type[:250], params=params, tags=tags)


def logged_model_for(user: User, model_id: str, needed: Access = Access.VIEW) -> LoggedModel:
    """The model if the caller may see (or, with `needed`, change) its run; else MLflow's RESOURCE_DOES_NOT_EXIST."""
    model = LoggedModel.objects.select_related("run").filter(model_id=model_id).first() if _ID.fullmatch(model_id) else None
    if model is not None:
        try:
            model.run = run_for(user, model.run_id, needed)
            return model
        except Http404:
            pass
    raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found.")


def logged_model_finalize(*, user: User, model: LoggedModel, status: str) -> None:
    require_access(user, model.run.project, Access.EDIT)
    if status not in (LoggedModelStatus.READY, LoggedModelStatus.UPLOAD_FAILED):
        raise ValidationError({"status": "A model is finalized as LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED."})
    model.status = status
    model.save(update_fields=["status", "updated_at"])


def logged_model_update(*, user: User, model: LoggedModel, params: Mapping[str, str] | None = None,
                        tags: Mapping[str, str] | None = None, delete_tag: str | None = None) -> None:
    """Add params, set tags, or delete one tag (a ValidationError when the model has no such tag)."""
    require_access(user, model.run.project, Access.EDIT)
    _check(dict(params or {}), MAX_PARAM_CHARS, "param")
    _check(dict(tags or {}), MAX_TAG_CHARS, "tag")
    with transaction.atomic():
        current = LoggedModel.objects.select_for_update().get(id=model.id)
        current.params.update(params or {})
        current.tags.update(tags or {})
        if delete_tag is not None:
            if delete_tag not in current.tags:
                raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No tag with key {delete_tag!r} found for model "
                                  f"with ID '{model.model_id}'.")
            del current.tags[delete_tag]
        current.save(update_fields=["params", "tags", "updated_at"])
    model.params, model.tags = current.params, current.tags


def logged_model_delete(*, user: User, model: LoggedModel) -> None:
    """Delete the model and its files (the run's artifacts under its folder)."""
    require_access(user, model.run.project, Access.EDIT)
    with transaction.atomic():
        artifacts_delete(run_id=model.run_id, path=model.artifact_folder)
        model.delete()


def logged_model_outputs(*, user: User, run: Run, outputs: list[tuple[str, int]]) -> None:
    """MLflow's LogOutputs: the run's models, each with the step it was logged at."""
    require_access(user, run.project, Access.EDIT)
    with transaction.atomic():
        for model_id, step in outputs:
            updated = LoggedModel.objects.filter(model_id=model_id, run_id=run.id).update(step=step)
            if not updated:
                raise MlflowError("INVALID_PARAMETER_VALUE", f"Logged model {model_id!r} was not logged by run {run.id}: "
                                  "Kiln keeps a model with the run that logged it")


def model_artifact_uri(model: LoggedModel) -> str:
    return f"{artifact_uri(model.run)}/{model.artifact_folder}"


def models_out(models: Iterable[LoggedModel]) -> list[dict[str, Any]]:
    """Models as MLflow's LoggedModel (info, data); metrics are the run's points at the model's step, read at once."""
    models = list(models)
    wanted = {(model.run_id, model.step) for model in models}
    points: dict[tuple[int, int], list[tuple[str, float | None, float]]] = {pair: [] for pair in wanted}
    if wanted:
        rows = Metric.objects.filter(run_id__in={run for run, _ in wanted}, step__in={step for _, step in wanted})
        for run_id, step, key, value, wall in rows.order_by("key").values_list("run_id", "step", "key", "value", "wall_time"):
            if (run_id, step) in points:
                points[run_id, step].append((key, value, wall))
    return [_model_out(model, points[model.run_id, model.step]) for model in models]


def _model_out(model: LoggedModel, points: list[tuple[str, float | None, float]]) -> dict[str, Any]:
    info = {
        "model_id": model.model_id, "experiment_id": str(model.run.project_id), "name": model.name,
        "creation_timestamp_ms": millis(model.created_at), "last_updated_timestamp_ms": millis(model.updated_at),
        "artifact_uri": model_artifact_uri(model), "status": model.status, "creator_id": model.creator_id,
        "model_type": model.model_type, "source_run_id": str(model.run_id), "status_message": model.status_message,
        "tags": [{"key": key, "value": value} for key, value in sorted(model.tags.items())],
    }
    metrics = [{"key": key, "value": double_out(value), "timestamp": int(wall * 1000), "step": model.step,
                "run_id": str(model.run_id), "model_id": model.model_id} for key, value, wall in points]
    params = [{"key": key, "value": value} for key, value in sorted(model.params.items())]
    return {"info": info, "data": {"params": params, "metrics": metrics}}


def _check(pairs: dict[str, str], limit: int, what: str) -> None:
    for key, value in pairs.items():
        if not key or len(key) > MAX_KEY_CHARS or "\0" in key:
            raise ValidationError({"key": f"A model {what} key has 1-{MAX_KEY_CHARS} characters and no NUL."})
        if len(value) > limit or "\0" in value:
            raise ValidationError({key: f"A model {what} value has at most {limit} characters and no NUL."})


# -- search ---------------------------------------------------------------------------------------------------

_ATTRIBUTES: dict[str, Callable[[LoggedModel], Any]] = {
    "name": lambda m: m.name, "model_id": lambda m: m.model_id, "model_type": lambda m: m.model_type,
    "status": lambda m: m.status, "source_run_id": lambda m: str(m.run_id),
    "creation_timestamp": lambda m: millis(m.created_at), "creation_time": lambda m: millis(m.created_at),
    "last_updated_timestamp": lambda m: millis(m.updated_at),
}
_CLAUSE = re.compile(r"""\s*(?:(?P<prefix>attributes?|params?|tags?|metrics?)\.)?(?P<key>`[^`]+`|[\w.\-]+)\s*
    (?P<op>!=|<=|>=|=|<|>|(?:NOT\s+)?IN|I?LIKE)\s*
    (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\([^)]*\))\s*""",
                     re.VERBOSE | re.IGNORECASE)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


def model_filter(text: str, metrics_of: Callable[[LoggedModel], dict[str, float]]) -> Callable[[LoggedModel], bool]:
    """MLflow's logged-model filter (`name = 'x' AND params.lr = '0.1' AND metrics.acc > 0.9`) as a predicate."""
    clauses = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': cannot read clause {part!r}")
        clauses.append(_clause(match, metrics_of, text))
    return lambda model: all(clause(model) for clause in clauses)


def _clause(match: re.Match[str], metrics_of: Callable[[LoggedModel], dict[str, float]],
            text: str) -> Callable[[LoggedModel], bool]:
    prefix = (match["prefix"] or "attributes").lower().rstrip("s")
    key, op, raw = match["key"].strip("`"), re.sub(r"\s+", " ", match["op"].upper()), match["value"]
    read: Callable[[LoggedModel], Any]
    if prefix in ("attribute", "attributes"):
        if key not in _ATTRIBUTES:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': no model attribute {key!r} "
                              f"(valid: {', '.join(sorted(_ATTRIBUTES))})")
        read = _ATTRIBUTES[key]
    elif prefix == "param":
        read = lambda m: m.params.get(key)  # noqa: E731
    elif prefix == "tag":
        read = lambda m: m.tags.get(key)  # noqa: E731
    else:
        read = lambda m: metrics_of(m).get(key)  # noqa: E731
    if raw.startswith("("):
        if op not in ("IN", "NOT IN"):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': a list goes with IN or NOT IN")
        values = {_unquote(item.strip()) for item in raw[1:-1].split(",") if item.strip()}
        return lambda m: (value := read(m)) is not None and ((value in values) == (op == "IN"))
    value: Any = _unquote(raw) if raw[0] in "'\"" else float(raw)
    if op in ("LIKE", "ILIKE"):
        if not isinstance(value, str):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': {op} takes a quoted pattern")
        pattern = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value),
                             re.DOTALL | (re.IGNORECASE if op == "ILIKE" else 0))
        return lambda m: isinstance(got := read(m), str) and pattern.fullmatch(got) is not None
    if op not in _COMPARE:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid filter '{text}': {op} takes a list")
    compare = _COMPARE[op]

    def holds(model: LoggedModel) -> bool:
        got = read(model)
        if got is None or (isinstance(value, float) and not isinstance(got, int | float)):
            return False
        if isinstance(got, float) and math.isnan(got):
            return False
        return compare(got, value if isinstance(value, float) else str(value))

    return holds


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1]) if token[:1] in "'\"" else token


def model_order(clauses: list[Any], metrics_of: Callable[[LoggedModel], dict[str, float]]) -> list[tuple[Any, bool]]:
    """MLflow's [{field_name, ascending}] as (key function, reverse) pairs, applied last to first."""
    order = []
    for clause in clauses[:10]:
        if not isinstance(clause, dict) or not isinstance(clause.get("field_name"), str):
            raise MlflowError("INVALID_PARAMETER_VALUE", "order_by takes [{'field_name': ..., 'ascending': ...}]")
        field = clause["field_name"]
        prefix, dot, key = field.partition(".")
        if dot and prefix == "metrics":
            read: Callable[[LoggedModel], Any] = functools.partial(_metric_of, metrics_of, key)
        elif (name := key if dot and prefix in ("attributes", "attribute") else field) in _ATTRIBUTES:
            read = _ATTRIBUTES[name]
        else:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by field {field!r}: order models by "
                              f"{', '.join(sorted(_ATTRIBUTES))} or metrics.<key>")
        ascending = clause.get("ascending", True) is not False
        order.append((_nulls_last(read), not ascending))
    return order


def _metric_of(metrics_of: Callable[[LoggedModel], dict[str, float]], key: str, model: LoggedModel) -> float | None:
    return metrics_of(model).get(key)


def _nulls_last(read: Callable[[LoggedModel], Any]) -> Callable[[LoggedModel], tuple[bool, Any]]:
    def key(model: LoggedModel) -> tuple[bool, Any]:
        value = read(model)
        return value is None, value if value is not None else 0

    return key


def experiment_models(project_ids: list[int]) -> list[LoggedModel]:
    return list(LoggedModel.objects.filter(run__project_id__in=project_ids).select_related("run"))


def parse_model_id(text: Any) -> str:
    model_id = str(text or "")
    if not model_id:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'model_id'.")
    return model_id


def run_of_experiment(user: User, run_id: Any, project_id: int) -> Run:
    """The source run of a new model: it must be in the model's experiment and the caller may edit it."""
    parsed = parse_id(str(run_id or ""))
    if not run_id:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Kiln keeps a logged model with the run that logged it: call "
                          "log_model inside mlflow.start_run() (source_run_id is required)")
    try:
        run = run_for(user, parsed, Access.EDIT) if parsed is not None else None
    except Http404:
        run = None
    if run is None or run.project_id != project_id:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found in experiment {project_id}")
    return run

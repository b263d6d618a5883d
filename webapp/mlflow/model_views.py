"""MLflow 3's logged-model endpoints (/api/2.0/mlflow/logged-models/...) and runs/outputs."""

from __future__ import annotations

import json

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from webapp.experiments import external
from webapp.mlflow import entities
from webapp.mlflow import logged_models as models
from webapp.mlflow.entities import experiment_for
from webapp.mlflow.errors import MlflowError, error_response
from webapp.mlflow.listing import children
from webapp.mlflow.models import LoggedModel, LoggedModelStatus
from webapp.mlflow.views import Data, _fields, _list, _page, _pairs, _run, _text, _token, answer, endpoint
from webapp.projects.permissions import Access

MAX_MODEL_RESULTS = 100  # mlflow's SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT
_STATUS_NUMBERS = {"1": LoggedModelStatus.PENDING, "2": LoggedModelStatus.READY, "3": LoggedModelStatus.UPLOAD_FAILED}


@endpoint("POST")
def logged_models_create(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, _text(data, "experiment_id"), Access.EDIT)
    run = models.run_of_experiment(user, data.get("source_run_id"), project.id)
    model = models.logged_model_create(
        user=user, run=run, name=_text(data, "name", required=False), model_type=_text(data, "model_type", required=False),
        params=_pairs(_list(data, "params"), "param"), tags=_pairs(_list(data, "tags"), "tag"))
    return {"model": models.models_out([model])[0]}


@endpoint("POST")
def logged_models_search(request: HttpRequest, user: User, data: Data) -> Data:
    offset, size = _page(data, default=MAX_MODEL_RESULTS, maximum=MAX_MODEL_RESULTS)
    projects = [experiment_for(user, experiment_id) for experiment_id in _list(data, "experiment_ids")[:100]]
    if _list(data, "datasets"):
        raise MlflowError("INVALID_PARAMETER_VALUE", "Kiln does not link model metrics to datasets: search without 'datasets'")
    found = models.experiment_models([project.id for project in projects])
    outs = {model.model_id: out for model, out in zip(found, models.models_out(found), strict=True)}

    def metrics_of(model: LoggedModel) -> dict[str, float]:
        return {m["key"]: float(m["value"]) for m in outs[model.model_id]["data"]["metrics"]}

    keep = models.model_filter(str(data.get("filter") or ""), metrics_of)
    found = [model for model in found if keep(model)]
    for key, reverse in reversed(models.model_order(_list(data, "order_by"), metrics_of)):
        found.sort(key=key, reverse=reverse)
    out: Data = {"models": [outs[model.model_id] for model in found[offset:offset + size]]}
    if len(found) > offset + size:
        out["next_page_token"] = _token(offset + size)
    return out


@csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
def logged_model(request: HttpRequest, model_id: str) -> HttpResponseBase:
    """GET: the model; PATCH: finalize it (its status); DELETE: delete it and its files."""
    handlers = {"GET": _get, "PATCH": _finalize, "DELETE": _delete}
    return _dispatch(request, handlers, model_id)


@csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
def logged_model_tags(request: HttpRequest, model_id: str) -> HttpResponseBase:
    return _dispatch(request, {"PATCH": _set_tags}, model_id)


@csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
def logged_model_tag(request: HttpRequest, model_id: str, tag_key: str) -> HttpResponseBase:
    return _dispatch(request, {"DELETE": lambda user, model_id, data: _delete_tag(user, model_id, tag_key)}, model_id)


@csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
def logged_model_params(request: HttpRequest, model_id: str) -> HttpResponseBase:
    return _dispatch(request, {"POST": _log_params}, model_id)


@csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
def logged_model_artifacts(request: HttpRequest, model_id: str) -> HttpResponseBase:
    return _dispatch(request, {"GET": _list_artifacts}, model_id)


def _dispatch(request: HttpRequest, handlers: dict, model_id: str) -> HttpResponseBase:
    handler = handlers.get(request.method or "")
    if handler is None:
        allowed = ", ".join(handlers)
        response = error_response("ENDPOINT_NOT_FOUND", f"{request.path} takes {allowed}, not {request.method}")
        response.status_code, response["Allow"] = 405, allowed
        return response
    return answer(request, lambda user: handler(user, model_id, _fields(request)))


def _get(user: User, model_id: str, data: Data) -> Data:
    return {"model": models.models_out([models.logged_model_for(user, model_id)])[0]}


def _finalize(user: User, model_id: str, data: Data) -> Data:
    model = models.logged_model_for(user, model_id, Access.EDIT)
    status = str(data.get("status") or "")
    models.logged_model_finalize(user=user, model=model, status=_STATUS_NUMBERS.get(status, status))
    return {"model": models.models_out([model])[0]}


def _delete(user: User, model_id: str, data: Data) -> Data:
    models.logged_model_delete(user=user, model=models.logged_model_for(user, model_id, Access.EDIT))
    return {}


def _set_tags(user: User, model_id: str, data: Data) -> Data:
    model = models.logged_model_for(user, model_id, Access.EDIT)
    models.logged_model_update(user=user, model=model, tags=_pairs(_list(data, "tags"), "tag"))
    return {}


def _delete_tag(user: User, model_id: str, key: str) -> Data:
    model = models.logged_model_for(user, model_id, Access.EDIT)
    models.logged_model_update(user=user, model=model, delete_tag=key)
    return {}


def _log_params(user: User, model_id: str, data: Data) -> Data:
    model = models.logged_model_for(user, model_id, Access.EDIT)
    models.logged_model_update(user=user, model=model, params=_pairs(_list(data, "params"), "param"))
    return {}


def _list_artifacts(user: User, model_id: str, data: Data) -> Data:
    model = models.logged_model_for(user, model_id)
    inner = _text(data, "artifact_directory_path", required=False).strip("/")
    if any(part in (".", "..") for part in inner.split("/")):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid artifact_directory_path {inner!r}")
    folder = f"{model.artifact_folder}/{inner}" if inner else model.artifact_folder
    files = children(model.run.artifacts.filter(name__startswith=f"{model.artifact_folder}/").values_list("name", "size"),
                     folder)
    return {"root_uri": models.model_artifact_uri(model),
            "files": [{**item, "path": f"{inner}/{item['path']}" if inner else item["path"]} for item in files]}


@endpoint("POST")
def runs_log_outputs(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data, Access.EDIT)
    outputs = []
    for item in _list(data, "models")[:1000]:
        if not isinstance(item, dict) or not item.get("model_id"):
            raise MlflowError("INVALID_PARAMETER_VALUE", "Each model output needs a 'model_id' and a 'step'")
        outputs.append((models.parse_model_id(item["model_id"]), entities.parse_int_field(item.get("step", 0) or 0, "step")))
    models.logged_model_outputs(user=user, run=run, outputs=outputs)
    return {}


LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"  # mlflow.utils.mlflow_tags.MLFLOW_LOGGED_MODELS


@endpoint("POST")
def runs_log_model(request: HttpRequest, user: User, data: Data) -> Data:
    """MLflow's LogModel (Model.log's record of a model's MLmodel): appended to the run's log-model history tag."""
    run = _run(user, data, Access.EDIT)
    try:
        model = json.loads(_text(data, "model_json"))
    except ValueError:
        raise MlflowError("INVALID_PARAMETER_VALUE", "model_json is not JSON") from None
    if not isinstance(model, dict) or not {"artifact_path", "flavors", "utc_time_created", "run_id"} <= model.keys():
        raise MlflowError("INVALID_PARAMETER_VALUE", "model_json must be an MLmodel's dict with artifact_path, "
                          "flavors, utc_time_created and run_id")
    current = run.tags.filter(name=LOG_MODEL_HISTORY_TAG).values_list("value", flat=True).first()
    history = json.loads(current) if current else []
    external.run_tags_set(user=user, run=run, tags={LOG_MODEL_HISTORY_TAG: json.dumps([*history, model])})
    return {}

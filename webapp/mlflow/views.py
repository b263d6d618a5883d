"""The MLflow tracking endpoints (/api/2.0/mlflow/...): parse what the MLflow client sends, call Kiln's services, answer
in MLflow's JSON. Experiments are projects, runs are runs (kind "external" when the client creates them).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from webapp.experiments import external, soft_delete
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import ResultError
from webapp.experiments.selectors import metric_history, run_for
from webapp.ids import parse_id
from webapp.mlflow import entities
from webapp.mlflow.auth import mlflow_user
from webapp.mlflow.entities import RUN_NAME_TAG, STATUS_TO_STATE, experiment_for, experiment_out, runs_out
from webapp.mlflow.errors import MlflowError, error_response
from webapp.mlflow.experiment_tags import experiment_tag_delete, experiment_tags_set
from webapp.mlflow.listing import children
from webapp.mlflow.search import parse_filter, parse_order_by
from webapp.projects.permissions import Access
from webapp.projects.selectors import projects_visible_to
from webapp.projects.services import project_update

MAX_METRICS_PER_BATCH = 1000  # mlflow.utils.validation's limits
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_RESULTS = 50_000
DEFAULT_RESULTS = 1000
HISTORY_PAGE = 25_000
# MLflow's ViewType, by name or by number, as a filter on `deleted_at` (soft delete)
VIEW_TYPES: dict[str, dict[str, bool]] = {
    "ACTIVE_ONLY": {"deleted_at__isnull": True}, "1": {"deleted_at__isnull": True},
    "DELETED_ONLY": {"deleted_at__isnull": False}, "2": {"deleted_at__isnull": False}, "ALL": {}, "3": {},
}

Data = dict[str, Any]
Handler = Callable[[HttpRequest, User, Data], Data]


def endpoint(method: str) -> Callable[[Handler], Callable[[HttpRequest], HttpResponseBase]]:
    """An MLflow endpoint: the token's user, the request's fields, and every error in MLflow's shape."""

    def wrap(handler: Handler) -> Callable[[HttpRequest], HttpResponseBase]:
        @csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
        @wraps(handler)
        def view(request: HttpRequest) -> HttpResponseBase:
            if request.method != method:
                response = error_response("ENDPOINT_NOT_FOUND", f"{request.path} takes {method}, not {request.method}")
                response.status_code, response["Allow"] = 405, method
                return response
            return answer(request, lambda user: handler(request, user, _fields(request)))

        return view

    return wrap


def answer(request: HttpRequest, respond: Callable[[User], Data | HttpResponseBase]) -> HttpResponseBase:
    """Authenticate, run `respond`, map Kiln's exceptions onto MLflow's error codes."""
    try:
        result = respond(mlflow_user(request))
    except MlflowError as exc:
        return error_response(exc.code, exc.message, exc.headers)
    except Http404 as exc:
        return error_response("RESOURCE_DOES_NOT_EXIST", str(exc) or "Not found")
    except PermissionDenied as exc:
        return error_response("PERMISSION_DENIED", str(exc) or "You may not do that")
    except ValidationError as exc:
        return error_response("INVALID_PARAMETER_VALUE", "; ".join(exc.messages))
    except ResultError as exc:
        return error_response("INVALID_PARAMETER_VALUE", str(exc))
    return result if isinstance(result, HttpResponseBase) else JsonResponse(result)


def _fields(request: HttpRequest) -> Data:
    if request.method == "GET":
        return {key: values if len(values) > 1 else values[0] for key, values in request.GET.lists()}
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise MlflowError("BAD_REQUEST", "The request body is not JSON") from None
    if not isinstance(data, dict):
        raise MlflowError("BAD_REQUEST", "The request body must be a JSON object")
    return data


def _text(data: Data, name: str, *, required: bool = True, default: str = "") -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{name}'.")
        return default
    if isinstance(value, list) or isinstance(value, dict):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Parameter '{name}' must be a string")
    return str(value)


def _list(data: Data, name: str) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _run(user: User, data: Data, needed: Access = Access.VIEW, *, deleted_ok: bool = False) -> Run:
    """The run the request names. A deleted run is read as MLflow reads it; a write to it is refused unless `deleted_ok`."""
    run_id = data.get("run_id") or data.get("run_uuid")
    if not run_id:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'run_id'.")
    parsed = parse_id(str(run_id))
    if parsed is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found")
    try:
        run = run_for(user, parsed, needed, with_deleted=True)
    except Http404:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found") from None
    if run.deleted_at is not None and needed > Access.VIEW and not deleted_ok:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"The run {run.id} must be in the 'active' state. "
                          "Current state is deleted.")
    return run


def _view_type(data: Data, name: str) -> dict[str, bool]:
    """MLflow's ViewType (by name or number) as a filter on `deleted_at`."""
    view = str(data.get(name) or "ACTIVE_ONLY").upper()
    if view not in VIEW_TYPES:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid value {view!r} for parameter '{name}': "
                          "use ACTIVE_ONLY, DELETED_ONLY or ALL")
    return VIEW_TYPES[view]


def _page(data: Data, default: int = DEFAULT_RESULTS, maximum: int = MAX_RESULTS) -> tuple[int, int]:
    """(offset, size) from page_token and max_results."""
    size = entities.parse_int_field(data["max_results"], "max_results") if data.get("max_results") not in (None, "") else default
    if not 1 <= size <= maximum:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid value {size} for parameter 'max_results' supplied. "
                          f"It must be at most {maximum}.")
    token = data.get("page_token") or ""
    if not token:
        return 0, size
    try:
        offset = json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"]
    except (ValueError, KeyError, TypeError):
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid page token") from None
    if not isinstance(offset, int) or not 0 <= offset < 2**62:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Invalid page token")
    return offset, size


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _pairs(items: list[Any], what: str) -> dict[str, str]:
    """[{"key", "value"}] as a dict, each a string (MLflow's params and tags)."""
    pairs: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Each {what} needs a 'key' (a string) and a 'value'")
        value = item.get("value", "")
        pairs[item["key"]] = value if isinstance(value, str) else json.dumps(value)
    return pairs


# -- experiments ----------------------------------------------------------------------------------------------


@endpoint("POST")
def experiments_create(request: HttpRequest, user: User, data: Data) -> Data:
    name = _text(data, "name")
    tags = _pairs(_list(data, "tags"), "tag")
    with transaction.atomic():
        project = entities.experiment_create(user, name)
        if tags:
            experiment_tags_set(user=user, project=project, tags=tags)
    return {"experiment_id": str(project.id)}


@endpoint("GET")
def experiments_get(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, _text(data, "experiment_id"))
    return {"experiment": experiment_out(user, project)}


@endpoint("GET")
def experiments_get_by_name(request: HttpRequest, user: User, data: Data) -> Data:
    name = _text(data, "experiment_name")
    project = entities.experiment_by_name(user, name)
    if project is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'")
    return {"experiment": experiment_out(user, project, name=name)}


@endpoint("POST")
def experiments_search(request: HttpRequest, user: User, data: Data) -> Data:
    offset, size = _page(data)
    view = _view_type(data, "view_type")
    projects = list(projects_visible_to(user, with_deleted=True).filter(**view).select_related("owner_user", "team")
                    .prefetch_related("mlflow_tags"))
    found = [(entities.experiment_name(user, p), p) for p in projects]
    for clause in _experiment_clauses(str(data.get("filter") or "")):
        found = [(name, p) for name, p in found if clause(name)]
    found.sort(key=lambda pair: (-pair[1].created_at.timestamp(), -pair[1].id))
    for order in reversed(_list(data, "order_by")):
        found.sort(**_experiment_order(str(order)))
    page = found[offset:offset + size]
    out: Data = {"experiments": [experiment_out(user, p, name=name) for name, p in page]}
    if len(found) > offset + size:
        out["next_page_token"] = _token(offset + size)
    return out


def _experiment_clauses(text: str) -> list[Callable[[str], bool]]:
    clauses: list[Callable[[str], bool]] = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        match = re.fullmatch(r"""(?:attributes?\.)?name\s*(=|!=|LIKE|ILIKE)\s*(['"])(.*)\2""", part.strip(), re.IGNORECASE | re.DOTALL)
        if match is None:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid experiment filter '{part}': Kiln searches experiments "
                              "by name (name = 'x', name != 'x', name LIKE 'x%', name ILIKE '%x%')")
        op, value = match.group(1).upper(), match.group(3)
        if op in ("LIKE", "ILIKE"):
            pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value)
            flags = re.IGNORECASE | re.DOTALL if op == "ILIKE" else re.DOTALL
            clauses.append(functools.partial(_matches, re.compile(pattern, flags)))
        else:
            clauses.append(functools.partial(_equals, value, op == "="))
    return clauses


def _matches(pattern: re.Pattern[str], name: str) -> bool:
    return pattern.fullmatch(name) is not None


def _equals(value: str, wanted: bool, name: str) -> bool:
    return (name == value) == wanted


def _experiment_order(clause: str) -> dict[str, Any]:
    field, _, direction = clause.strip().partition(" ")
    field = field.removeprefix("attributes.").removeprefix("attribute.")
    keys: dict[str, Callable[[Any], Any]] = {
        "name": lambda pair: pair[0], "experiment_id": lambda pair: pair[1].id,
        "creation_time": lambda pair: pair[1].created_at, "last_update_time": lambda pair: pair[1].created_at,
    }
    if field not in keys or direction.strip().upper() not in ("", "ASC", "DESC"):
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause '{clause}': order experiments by name, "
                          "experiment_id, creation_time or last_update_time, ASC or DESC")
    return {"key": keys[field], "reverse": direction.strip().upper() == "DESC"}


@endpoint("POST")
def experiments_update(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, _text(data, "experiment_id"), Access.ADMIN)
    new_name = _text(data, "new_name", required=False).strip()
    if new_name:
        if "/" in new_name:
            raise MlflowError("INVALID_PARAMETER_VALUE", "A new experiment name renames the project: give it without an owner")
        project_update(user=user, project=project, name=new_name)
    return {}


@endpoint("POST")
def experiments_delete(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, _text(data, "experiment_id"), Access.ADMIN, deleted_ok=True)
    if project.deleted_at is not None:  # MLflow deletes active experiments only
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={project.id} exists")
    soft_delete.project_soft_delete(user=user, project=project)
    return {}


@endpoint("POST")
def experiments_restore(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, _text(data, "experiment_id"), Access.ADMIN, deleted_ok=True)
    if project.deleted_at is None:  # MLflow restores deleted experiments only
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={project.id} exists")
    soft_delete.project_restore(user=user, project=project)
    return {}


@endpoint("POST")
def experiments_set_tag(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, _text(data, "experiment_id"), Access.EDIT)
    value = data.get("value")
    experiment_tags_set(user=user, project=project, tags={_text(data, "key"): "" if value is None else str(value)})
    return {}


@endpoint("POST")
def experiments_delete_tag(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, _text(data, "experiment_id"), Access.EDIT)
    key = _text(data, "key")
    if not experiment_tag_delete(user=user, project=project, key=key):
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No tag with name: {key} in experiment with id {project.id}")
    return {}


# -- runs -----------------------------------------------------------------------------------------------------


@endpoint("POST")
def runs_create(request: HttpRequest, user: User, data: Data) -> Data:
    project = experiment_for(user, data.get("experiment_id") or entities.DEFAULT_EXPERIMENT_ID, Access.EDIT)
    tags = _pairs(_list(data, "tags"), "tag")
    name = _text(data, "run_name", required=False) or tags.pop(RUN_NAME_TAG, "")
    tags.pop(RUN_NAME_TAG, None)
    note = tags.pop(entities.NOTE_TAG, None)
    started = entities.from_millis(data.get("start_time"), "start_time")
    run = external.external_run_create(user=user, project=project, name=name, source="mlflow", started_at=started, tags=tags)
    if note:
        Run.objects.filter(id=run.id).update(notes=note)
    return {"run": runs_out([run_for(user, run.id)])[0]}


@endpoint("POST")
def runs_update(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data, Access.EDIT)
    name = _text(data, "run_name", required=False)
    if name:
        external.external_run_rename(user=user, run=run, name=name)
    status = _text(data, "status", required=False).upper()
    if status and status != "RUNNING":
        if status not in STATUS_TO_STATE:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"Kiln takes status RUNNING, FINISHED, FAILED or KILLED, not {status}")
        ended = entities.from_millis(data.get("end_time"), "end_time")
        external.external_run_end(user=user, run=run, state=STATUS_TO_STATE[status], finished_at=ended,
                                  reason=f"the MLflow client set status {status}")
    elif status == "RUNNING" and run.state != RunState.RUNNING:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Run {run.id} has ended ({run.state}); it cannot run again")
    run = run_for(user, run.id)
    return {"run_info": runs_out([run])[0]["info"]}


@endpoint("GET")
def runs_get(request: HttpRequest, user: User, data: Data) -> Data:
    return {"run": runs_out([_run(user, data)])[0]}


@endpoint("POST")
def runs_delete(request: HttpRequest, user: User, data: Data) -> Data:
    soft_delete.run_soft_delete(user=user, run=_run(user, data, Access.EDIT, deleted_ok=True))
    return {}


@endpoint("POST")
def runs_restore(request: HttpRequest, user: User, data: Data) -> Data:
    soft_delete.run_restore(user=user, run=_run(user, data, Access.EDIT, deleted_ok=True))
    return {}


@endpoint("POST")
def runs_search(request: HttpRequest, user: User, data: Data) -> Data:
    offset, size = _page(data)
    ids = _list(data, "experiment_ids")
    if not ids:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_ids'.")
    projects = [experiment_for(user, experiment_id) for experiment_id in ids[:100]]
    scope = Run.all_objects.filter(project__in=[p.id for p in projects], **_view_type(data, "run_view_type"))
    condition = parse_filter(str(data.get("filter") or ""), scope)
    order = parse_order_by([str(clause) for clause in _list(data, "order_by")])
    runs = list(scope.filter(condition)
                .select_related("owner").prefetch_related("tags").order_by(*order)[offset:offset + size + 1])
    out: Data = {"runs": runs_out(runs[:size])}
    if len(runs) > size:
        out["next_page_token"] = _token(offset + size)
    return out


# -- params, metrics, tags ------------------------------------------------------------------------------------


def _metric(item: Any) -> tuple[str, float, float, int]:
    if not isinstance(item, dict) or not isinstance(item.get("key"), str):
        raise MlflowError("INVALID_PARAMETER_VALUE", "Each metric needs a 'key', a 'value' and a 'timestamp'")
    if item.get("value") is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"Missing value for required parameter 'value' of metric {item['key']!r}")
    value = entities.parse_double(item["value"], f"metric {item['key']!r} value")
    timestamp = entities.parse_int_field(item.get("timestamp", 0) or 0, "timestamp")
    step = entities.parse_int_field(item.get("step", 0) or 0, "step")
    return item["key"], value, timestamp / 1000, step


@endpoint("POST")
def runs_log_metric(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data, Access.EDIT)
    points = external.metric_points([_metric(data)])
    external.metrics_log_latest(run_id=run.id, points=points)
    return {}


@endpoint("POST")
def runs_log_parameter(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data, Access.EDIT)
    value = data.get("value")
    if value is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'value'.")
    external.run_params_log(user=user, run=run, params={_text(data, "key"): str(value)})
    return {}


@endpoint("POST")
def runs_set_tag(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data, Access.EDIT)
    _tags_set(user, run, {_text(data, "key"): str(data.get("value") or "")})
    return {}


def _tags_set(user: User, run: Run, tags: dict[str, str]) -> None:
    name = tags.pop(RUN_NAME_TAG, None)
    if name:
        external.external_run_rename(user=user, run=run, name=name)
    note = tags.pop(entities.NOTE_TAG, None)
    if note is not None:
        Run.objects.filter(id=run.id).update(notes=note[:100_000])
    external.run_tags_set(user=user, run=run, tags=tags)


@endpoint("POST")
def runs_delete_tag(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data, Access.EDIT)
    external.run_tag_delete(user=user, run=run, key=_text(data, "key"))
    return {}


@endpoint("POST")
def runs_log_batch(request: HttpRequest, user: User, data: Data) -> Data:
    metrics, params, tags = _list(data, "metrics"), _list(data, "params"), _list(data, "tags")
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} "
                          f"metrics. Got {len(metrics)} metrics. Please split up metrics across multiple requests and try again.")
    for items, what in ((params, "params"), (tags, "tags")):
        if len(items) > MAX_PARAMS_TAGS_PER_BATCH:
            raise MlflowError("INVALID_PARAMETER_VALUE", f"A batch logging request can contain at most "
                              f"{MAX_PARAMS_TAGS_PER_BATCH} {what}. Got {len(items)} {what}. Please split up {what} "
                              "across multiple requests and try again.")
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} "
                          f"metrics, params, and tags in total. Got {total} entities.")
    run = _run(user, data, Access.EDIT)
    param_pairs = _pairs(params, "param")
    if len(param_pairs) < len(params):
        duplicated = [item.get("key") for item in params]
        raise MlflowError("INVALID_PARAMETER_VALUE", "Duplicate parameter keys have been submitted: "
                          f"{sorted({k for k in duplicated if duplicated.count(k) > 1})}. Please ensure the request "
                          "contains only one param value per param key.")
    points = external.metric_points([_metric(item) for item in metrics])
    tag_pairs = _pairs(tags, "tag")
    with transaction.atomic():  # all or nothing, as MLflow's log_batch
        if param_pairs:
            external.run_params_log(user=user, run=run, params=param_pairs)
        if tag_pairs:
            _tags_set(user, run, tag_pairs)
        external.metrics_log_latest(run_id=run.id, points=points)
    return {}


@endpoint("POST")
def runs_log_inputs(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data, Access.EDIT)
    datasets = _list(data, "datasets")
    if len(datasets) > 1000 or not all(isinstance(item, dict) for item in datasets):
        raise MlflowError("INVALID_PARAMETER_VALUE", "datasets is a list of at most 1000 dataset inputs")
    if len(json.dumps(datasets)) > 1_000_000:
        raise MlflowError("INVALID_PARAMETER_VALUE", "The dataset inputs are larger than 1 MB")
    if datasets:
        external.external_run_inputs_add(user=user, run=run, inputs=datasets)
    return {}


@endpoint("GET")
def metrics_get_history(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data)
    key = _text(data, "metric_key")
    offset, size = _page(data, default=HISTORY_PAGE, maximum=HISTORY_PAGE)
    rows = metric_history(run.id, key, offset=offset, limit=size + 1)
    out: Data = {"metrics": [
        {"key": key, "value": entities.double_out(value), "timestamp": int(wall * 1000), "step": step}
        for step, value, wall in rows[:size]
    ]}
    if len(rows) > size:
        out["next_page_token"] = _token(offset + size)
    return out


@endpoint("GET")
def artifacts_list(request: HttpRequest, user: User, data: Data) -> Data:
    run = _run(user, data)
    path = _text(data, "path", required=False).strip("/")
    names = list(run.artifacts.values_list("name", "size"))
    files = [{**item, "path": f"{path}/{item['path']}" if path else item["path"]} for item in children(names, path)]
    return {"root_uri": entities.artifact_uri(run), "files": files}

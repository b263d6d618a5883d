"""MLflow's proxied artifact service (/api/2.0/mlflow-artifacts/artifacts/...) over Kiln's artifact storage.

A run's artifact_uri is `mlflow-artifacts:/<experiment id>/<run id>/artifacts`; the client resolves it to
these endpoints: GET (download or, without a path, list ?path=), PUT (upload the body), DELETE.
Files go through `artifact_store` into the same storage (local folder or S3) as every run's artifacts.
"""

from __future__ import annotations

import posixpath
import tempfile

from django.contrib.auth.models import User
from django.core.files import File
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from webapp.api.results import MAX_ARTIFACT_BYTES
from webapp.experiments.downloads import stored_file_response
from webapp.experiments.models import Artifact, Run
from webapp.experiments.results import artifact_store, artifacts_delete
from webapp.experiments.selectors import run_for
from webapp.ids import parse_id
from webapp.mlflow.errors import MlflowError
from webapp.mlflow.listing import children
from webapp.mlflow.views import Data, answer
from webapp.projects.permissions import Access

_CHUNK = 1024 * 1024


def _locate(user: User, path: str, needed: Access) -> tuple[Run, str]:
    """The run and the artifact path inside it that `<experiment id>/<run id>/artifacts[/<path>]` names."""
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[2] != "artifacts":
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifacts at {path!r}: Kiln keeps them under "
                          "<experiment id>/<run id>/artifacts")
    experiment_id, run_id = parse_id(parts[0]), parse_id(parts[1])
    inner = "/".join(parts[3:])
    if experiment_id is None or run_id is None or any(part in ("", ".", "..") for part in parts[3:]):
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifacts at {path!r}")
    run = run_for(user, run_id, needed, with_deleted=needed <= Access.VIEW)  # a deleted run's files are read, never written
    if run.project_id != experiment_id:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifacts at {path!r}")
    return run, inner


@csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
def artifacts_root(request: HttpRequest) -> HttpResponseBase:
    """GET ?path=<experiment id>/<run id>/artifacts[/folder]: the folder's files and folders."""
    if request.method != "GET":
        return _not_allowed(request, "GET")

    def listing(user: User) -> Data:
        run, inner = _locate(user, request.GET.get("path", ""), Access.VIEW)
        return {"files": children(run.artifacts.values_list("name", "size"), inner)}

    return answer(request, listing)


@csrf_exempt  # authenticated by the Authorization header only, never a cookie (see auth.py)
def artifact_file(request: HttpRequest, artifact_path: str) -> HttpResponseBase:
    if request.method == "GET":
        return answer(request, lambda user: _download(user, artifact_path))
    if request.method == "PUT":
        return answer(request, lambda user: _upload(request, user, artifact_path))
    if request.method == "DELETE":
        return answer(request, lambda user: _delete(user, artifact_path))
    return _not_allowed(request, "GET, PUT, DELETE")


def _download(user: User, path: str) -> HttpResponseBase:
    run, inner = _locate(user, path, Access.VIEW)
    artifact = Artifact.objects.filter(run_id=run.id, name=inner).first()
    if artifact is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact {inner!r} in run {run.id}")
    try:
        response = stored_file_response(artifact.storage_path, posixpath.basename(inner),
                                        content_type="application/octet-stream")
    except FileNotFoundError:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"The file of artifact {inner!r} is missing from storage") from None
    response["X-Checksum-Sha256"] = artifact.sha256
    return response


def _upload(request: HttpRequest, user: User, path: str) -> Data:
    run, inner = _locate(user, path, Access.EDIT)
    if not inner:
        raise MlflowError("INVALID_PARAMETER_VALUE", "PUT names the artifact's path under the run's artifacts")
    declared = request.headers.get("Content-Length") or "0"
    if declared.isdigit() and int(declared) > MAX_ARTIFACT_BYTES:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"An artifact has at most {MAX_ARTIFACT_BYTES:,} bytes")
    with tempfile.TemporaryFile() as spool:
        size = 0
        while chunk := request.read(_CHUNK):
            size += len(chunk)
            if size > MAX_ARTIFACT_BYTES:
                raise MlflowError("INVALID_PARAMETER_VALUE", f"An artifact has at most {MAX_ARTIFACT_BYTES:,} bytes")
            spool.write(chunk)
        spool.seek(0)
        artifact_store(run_id=run.id, name=inner, kind="artifact", file=File(spool, name=posixpath.basename(inner)))
    return {}


def _delete(user: User, path: str) -> Data:
    run, inner = _locate(user, path, Access.EDIT)
    if not artifacts_delete(run_id=run.id, path=inner):
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact {inner!r} in run {run.id}")
    return {}


def _not_allowed(request: HttpRequest, allowed: str) -> HttpResponseBase:
    from webapp.mlflow.errors import error_response

    response = error_response("ENDPOINT_NOT_FOUND", f"{request.path} takes {allowed}, not {request.method}")
    response.status_code, response["Allow"] = 405, allowed
    return response

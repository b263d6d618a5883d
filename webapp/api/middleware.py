"""Every answer under /api/ that is an error is Kiln's JSON error, whichever layer made it.

ninja's handlers (errors.py) shape the errors raised in operations; this middleware, first in the
chain, reshapes the rest: Django's URL resolver (404), its 400/403/500 handlers (a suspicious
request, a CSRF failure, an exception), ninja's 405, middleware answers. Under the MLflow API's
paths (/api/2.0/mlflow/, /api/2.0/mlflow-artifacts/) the shape is MLflow's: {"error_code", "message"}.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse

from webapp.mlflow.errors import is_mlflow_path
from webapp.mlflow.errors import reshaped as mlflow_reshaped

API_PREFIX = "/api/"
_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "too_large", 415: "unsupported_media_type", 429: "rate_limited", 500: "server_error",
}
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiErrorsAsJson:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not request.path.startswith(API_PREFIX) or _is_json(response):
            return response
        if is_mlflow_path(request.path):  # the MLflow API's errors keep MLflow's shape for its client
            return mlflow_reshaped(request, response)
        return _json_error(request, response)


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _json_error(request: HttpRequest, response: HttpResponse) -> JsonResponse:
    status = response.status_code
    code = _CODES.get(status, "server_error" if status >= 500 else "error")
    message = _phrase(status)
    if status == 404:
        message = "No such API endpoint or object"
    elif status == 405:
        message = f"{request.method} is not allowed here; allowed: {response.get('Allow', 'none')}"
    elif status >= 500:
        message = "Internal server error; it has been logged"
    reshaped = JsonResponse({"code": code, "message": message, "fields": []}, status=status)
    for name in _KEPT_HEADERS:
        if name in response:
            reshaped[name] = response[name]
    return reshaped


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"

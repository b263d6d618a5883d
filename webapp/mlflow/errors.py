"""MLflow's error shape, `{"error_code": "...", "message": "..."}`, with MLflow's codes and HTTP statuses.

The MLflow client reads `error_code` to raise its usual exceptions (`MlflowException`, `RestException`).
"""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse

PREFIXES = ("/api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/", "/ajax-api/2.0/mlflow/")

STATUS = {  # mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS
    "BAD_REQUEST": 400, "INVALID_PARAMETER_VALUE": 400, "RESOURCE_ALREADY_EXISTS": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "RESOURCE_DOES_NOT_EXIST": 404, "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429, "INTERNAL_ERROR": 500, "INVALID_STATE": 500, "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}
_BY_STATUS = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "ENDPOINT_NOT_FOUND",
              405: "ENDPOINT_NOT_FOUND", 413: "INVALID_PARAMETER_VALUE", 415: "BAD_REQUEST",
              429: "RESOURCE_EXHAUSTED"}
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class MlflowError(Exception):
    """Raised by the handlers; becomes MLflow's JSON error."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.headers = headers or {}


def error_response(code: str, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse({"error_code": code, "message": message}, status=STATUS.get(code, 500))
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def is_mlflow_path(path: str) -> bool:
    return path.startswith(PREFIXES)


def reshaped(request: HttpRequest, response: HttpResponse) -> JsonResponse:
    """Any other layer's error answer under MLflow's paths (URL not found, CSRF, a crash) in MLflow's shape."""
    status = response.status_code
    code = _BY_STATUS.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
    if status in (404, 405):
        message = f"No MLflow endpoint {request.method} {request.path} in Kiln"
    elif status >= 500:
        message = "Internal server error; it has been logged"
    else:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
    answer = JsonResponse({"error_code": code, "message": message}, status=status)
    for name in _KEPT_HEADERS:
        if name in response:
            answer[name] = response[name]
    return answer

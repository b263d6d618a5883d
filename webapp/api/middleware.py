"""Every answer under /api/ that is an error is Kiln's JSON error, whichever layer made it; and the
cookie layers that a request signed in by its Authorization header never needs.

ninja's handlers (errors.py) shape the errors raised in operations; `ApiErrorsAsJson`, first in the
chain, reshapes the rest: Django's URL resolver (404), its 400/403/500 handlers (a suspicious
request, a CSRF failure, an exception), ninja's 405, middleware answers. Under the MLflow API's
paths (/api/2.0/mlflow/, /api/2.0/mlflow-artifacts/) the shape is MLflow's: {"error_code", "message"}.

`unless_header_auth` wraps the session, CSRF, cookie sign-in and messages middleware: an /api/ request
with `Authorization: Bearer ...` or `Basic ...` is signed in by that header alone (`TokenAuth`,
`mlflow.auth`; neither reads a session), so it skips them: no session is loaded, no CSRF token is
looked for (no browser sends that header cross-site unasked) and `request.user` is anonymous until
the token's check sets it. Every other request, an /api/ one with cookies only included, passes
through them all as before.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware

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


_HEADER_SCHEMES = ("bearer ", "basic ")


def header_authenticated(request: HttpRequest) -> bool:
    """An /api/ request that carries its credentials in the Authorization header (the API's only sign-in)."""
    return request.path.startswith(API_PREFIX) and request.META.get("HTTP_AUTHORIZATION", "")[:7].lower().startswith(
        _HEADER_SCHEMES)


def unless_header_auth(middleware: type) -> type:
    """`middleware` for every request but a header-authenticated API one, which goes straight on, its hooks skipped too.

    A subclass, so what looks for the middleware (the admin's checks) still finds it.
    """

    def __call__(self: Any, request: HttpRequest) -> HttpResponse:
        if header_authenticated(request):
            if not hasattr(request, "user"):
                request.user = AnonymousUser()  # the token's check sets the user; no cookie's is ever read
            return self.get_response(request)
        return middleware.__call__(self, request)

    def skipping(method: Callable[..., Any]) -> Callable[..., Any]:
        def hook(self: Any, request: HttpRequest, *args: Any) -> Any:
            return None if header_authenticated(request) else method(self, request, *args)

        return hook

    namespace: dict[str, Any] = {"__call__": __call__, "__module__": __name__, "__doc__": middleware.__doc__}
    for name in ("process_view", "process_exception", "process_template_response"):  # the hooks Django collects
        if hasattr(middleware, name):
            namespace[name] = skipping(getattr(middleware, name))
    return type(middleware.__name__, (middleware,), namespace)


Sessions = unless_header_auth(SessionMiddleware)
Csrf = unless_header_auth(CsrfViewMiddleware)
CookieSignIn = unless_header_auth(AuthenticationMiddleware)
Messages = unless_header_auth(MessageMiddleware)

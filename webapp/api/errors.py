"""Every API error is JSON: {"code": "...", "message": "...", "fields": [{"field": ..., "message": ...}]}.

Handlers map the kernel's exceptions onto HTTP: Http404 -> 404, PermissionDenied -> 403,
ValidationError/SpecError -> 422 naming each field, a bad token -> 401, too many requests -> 429.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from webapp.api.parser import InflatedTooLarge, MalformedJson, UnsupportedEncoding, UnsupportedMediaType
from webapp.experiments.results import ResultError
from webapp.experiments.spec import SpecError
from webapp.uploads import UploadTooLarge


class FieldError(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    code: str
    message: str
    fields: list[FieldError] = []


class ApiError(Exception):
    """Raised by handlers for a 4xx with a machine-readable code."""

    def __init__(
        self, status: int, code: str, message: str, *, fields: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        self.headers = headers or {}


def install_error_handlers(api: NinjaAPI) -> None:
    """Replace ninja's default error bodies with Kiln's one error shape."""

    def respond(request: HttpRequest, status: int, code: str, message: str,
                fields: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> HttpResponse:
        response = api.create_response(
            request, {"code": code, "message": message, "fields": fields or []}, status=status
        )
        for name, value in (headers or {}).items():
            response[name] = value
        return response

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return respond(request, exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, "not_found", str(exc) or "Not found")

    @api.exception_handler(PermissionDenied)
    def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return respond(request, 403, "forbidden", str(exc) or "You may not do that")

    @api.exception_handler(AuthenticationError)
    def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return respond(
            request, 401, "unauthorized", "Send a valid API token: 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="kiln"'},
        )

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        cause = exc.__cause__  # ninja wraps every body parser error in a 400
        if isinstance(cause, (UnsupportedMediaType, UnsupportedEncoding)):
            return respond(request, 415, "unsupported_media_type", str(cause))
        if isinstance(cause, InflatedTooLarge):
            return respond(request, 413, "too_large", str(cause))
        return respond(request, exc.status_code, "bad_request" if exc.status_code == 400 else "error", exc.message)

    @api.exception_handler(NinjaValidationError)
    def _invalid_request(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        fields = [_ninja_field(error) for error in exc.errors]
        return respond(request, 422, "invalid", _summary(fields), fields)

    @api.exception_handler(SpecError)
    def _invalid_spec(request: HttpRequest, exc: SpecError) -> HttpResponse:
        return respond(request, 422, "invalid_spec", str(exc), list(exc.errors))

    @api.exception_handler(DjangoValidationError)
    def _invalid(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        if hasattr(exc, "error_dict"):
            fields = [{"field": name, "message": message} for name, messages in exc.message_dict.items() for message in messages]
        else:
            fields = [{"field": "", "message": message} for message in exc.messages]
        return respond(request, 422, "invalid", _summary(fields), fields)

    @api.exception_handler(ResultError)
    def _bad_result(request: HttpRequest, exc: ResultError) -> HttpResponse:
        return respond(request, 422, "invalid", str(exc))

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        message = str(exc) if isinstance(exc, InflatedTooLarge) else "The request body is too large"
        return respond(request, 413, "too_large", message)

    @api.exception_handler(UnsupportedEncoding)
    def _bad_encoding(request: HttpRequest, exc: UnsupportedEncoding) -> HttpResponse:
        return respond(request, 415, "unsupported_media_type", str(exc))

    @api.exception_handler(MalformedJson)
    def _not_json(request: HttpRequest, exc: MalformedJson) -> HttpResponse:
        return respond(request, 400, "bad_request", str(exc))

    @api.exception_handler(UnsupportedMediaType)
    def _bad_type(request: HttpRequest, exc: UnsupportedMediaType) -> HttpResponse:
        return respond(request, 415, "unsupported_media_type", str(exc))

    @api.exception_handler(UploadTooLarge)
    def _upload_too_big(request: HttpRequest, exc: UploadTooLarge) -> HttpResponse:
        fields = [{"field": exc.field, "message": f"larger than {exc.limit:,} bytes"}] if exc.field else []
        return respond(request, 413, "too_large", exc.message, fields)


def _ninja_field(error: dict[str, Any]) -> dict[str, str]:
    # NOTE: ninja's loc starts with where the value came from ("body", "query", "path", "form", "file").
    loc = [str(part) for part in error.get("loc", ())]
    if len(loc) > 1 and loc[0] in ("body", "query", "path", "form", "file", "header", "cookie"):
        loc = loc[1:]
        if len(loc) > 1 and loc[0] in ("payload", "data", "params"):  # the schema argument's own name
            loc = loc[1:]
    message = str(error.get("msg", "is invalid"))
    if error.get("type") == "extra_forbidden":
        message = "unknown field"
    elif error.get("type") == "value_error":
        message = message.removeprefix("Value error, ")  # pydantic's prefix to a validator's own message
    return {"field": ".".join(loc) or "body", "message": message}


def _summary(fields: list[dict[str, str]]) -> str:
    if not fields:
        return "The request is invalid"
    return "; ".join(f"{f['field']}: {f['message']}" if f["field"] else f["message"] for f in fields[:10])

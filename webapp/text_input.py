"""NUL characters are refused in every text a request carries: PostgreSQL cannot store or compare them,
and no form or query means one.

The API's JSON fields check it per field (`api.schemas.Text`, specs in `experiments.spec`);
`RefuseNul` checks query strings and form fields before any view (or query) sees them: 400 naming
the field. Views that read their own bodies (the API, upload pages: csrf_exempt) check their own fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

NUL_MESSAGE = "must not contain NUL characters"


def nul_free(value: str) -> str:
    """`value`, or ValueError when it holds a NUL character."""
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


class RefuseNul:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Callable[..., HttpResponse], args: Any, kwargs: Any) -> HttpResponse | None:
        # NOTE: csrf_exempt views (the API, upload pages) read their own bodies, after their upload limits.
        field = _field_with_nul(request, body=not getattr(view, "csrf_exempt", False))
        if field is None:
            return None
        message = f"{field}: {NUL_MESSAGE}"
        if request.path.startswith("/api/"):
            fields = [{"field": field, "message": NUL_MESSAGE}]
            return JsonResponse({"code": "invalid", "message": message, "fields": fields}, status=400)
        return render(request, "400.html", {"message": f"The field {field} {NUL_MESSAGE}."}, status=400)


def _field_with_nul(request: HttpRequest, *, body: bool) -> str | None:
    sources = [request.GET, request.POST] if body and request.method == "POST" else [request.GET]
    for data in sources:
        for name, values in data.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return name.replace("\x00", "\\0")[:100]
    return None

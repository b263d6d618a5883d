"""gzip for JSON answers (the API, the dashboards' data), when the client accepts it.

Django's GZipMiddleware does the work, its BREACH padding (up to 100 random bytes) included. Only
JSON is compressed: HTML pages reflect user input beside the CSRF token, the case BREACH needs, and
gain little; no JSON answer holds a secret that repeats across responses (a new API token is shown
once, in its own answer). Static files come compressed already (whitenoise, the plotly.js view).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.gzip import GZipMiddleware


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class GzipJson(GZipMiddleware):
    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not is_json(response.get("Content-Type", "")):
            return response
        return super().process_response(request, response)

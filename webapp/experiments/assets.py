"""plotly.js served from the installed `plotly` package: no CDN, no copy in the repository.

The URL carries the package's version, so browsers may cache it for a year; the gzip form is
built once per process and sent to clients that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import cache
from pathlib import Path

import plotly
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

PLOTLY_VERSION = plotly.__version__


@cache
def _plotly_bytes() -> tuple[bytes, bytes, str]:
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    data = path.read_bytes()
    return data, gzip.compress(data, compresslevel=6, mtime=0), hashlib.sha256(data).hexdigest()[:16]


@require_GET
def plotly_js(request: HttpRequest, version: str) -> HttpResponse:
    if version != PLOTLY_VERSION:
        raise Http404("No such plotly.js version")
    data, compressed, etag = _plotly_bytes()
    if request.headers.get("If-None-Match") == f'"{etag}"':
        return HttpResponse(status=304)
    use_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    response = HttpResponse(compressed if use_gzip else data, content_type="text/javascript; charset=utf-8")
    if use_gzip:
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    response["ETag"] = f'"{etag}"'
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response

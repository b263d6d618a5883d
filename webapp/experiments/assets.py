"""plotly.js served from the copy Kiln ships: its gl2d partial bundle, not the full one.

The charts use only scatter, scattergl and parcoords, which plotly.js's gl2d bundle holds at a
third of the full bundle's size (1.5 MB against 4.8 MB; less for the browser to download and
parse on a first visit). `vendor/` holds it as plotly.js publishes it (`make vendor-plotly`).
The URL carries the bundle's version, so browsers may cache it for a year; the gzip form is
built once per process and sent to clients that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from functools import cache
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

PLOTLY_BUNDLE = Path(__file__).resolve().parent / "vendor" / "plotly-gl2d.min.js"


def _bundle_version(path: Path) -> str:
    """The version in the bundle's banner (`plotly.js (gl2d - minified) v4.1.1`), so the URL follows the file."""
    with path.open("rb") as bundle:
        banner = bundle.read(300).decode("ascii", "replace")
    found = re.search(r"plotly\.js \(gl2d[^)]*\) v(\d+\.\d+\.\d+)", banner)
    if found is None:
        raise RuntimeError(f"{path} is not plotly.js's gl2d bundle (no version in its banner)")
    return found.group(1)


PLOTLY_VERSION = _bundle_version(PLOTLY_BUNDLE)


@cache
def _plotly_bytes() -> tuple[bytes, bytes, str]:
    data = PLOTLY_BUNDLE.read_bytes()
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

"""The Content-Security-Policy every response carries: scripts only from Kiln's own files, no inline script.

Templates hold no inline <script> or on...= handlers (page data travels in `json_script` blocks, which
never run). Styles may be inline: Plotly sets them on the elements it draws. Images may be data:/blob:
URLs (Plotly's "download as PNG"). Only the pages that draw parallel coordinates (Plotly's WebGL trace:
regl compiles its draw calls with `new Function`) also allow eval, through `csp_allows_eval`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


EVAL_POLICY = CONTENT_SECURITY_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-eval'")


def csp_allows_eval(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The policy for a page that draws Plotly's WebGL traces: still no inline script, but eval."""

    @wraps(view)
    def with_eval(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.headers["Content-Security-Policy"] = EVAL_POLICY
        return response

    return with_eval


class ContentSecurityPolicy:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

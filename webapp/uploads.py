"""Upload limits enforced while the body streams in, not after Django has spooled all of it.

An endpoint that takes files puts `LimitedUploadHandler` first in line (`upload_limit` for API
operations, `page_upload_limit` for pages). Before reading any of the body it refuses a
Content-Length that no valid request could have; then it counts file bytes as they arrive and
stops at the first chunk past the limit, dropping what other handlers had spooled.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

PART_OVERHEAD = 64 * 1024  # multipart boundaries and part headers


class UploadTooLarge(RequestDataTooBig):
    """An upload past its endpoint's limit; raised before the rest of the body is read."""

    def __init__(self, message: str, *, limit: int, field: str = ""):
        super().__init__(message)
        self.message, self.limit, self.field = message, limit, field


def body_cap(limit: int) -> int | None:
    """The largest body a valid request can have: the files, the other fields (Django's own cap), framing."""
    fields = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return None if fields is None else limit + fields + PART_OVERHEAD


class LimitedUploadHandler(FileUploadHandler):
    """Refuses a request whose files add up to more than `limit` bytes, as soon as they do."""

    def __init__(self, request: HttpRequest, limit: int):
        super().__init__(request)
        self.limit = limit
        self.received = 0

    def handle_raw_input(self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None) -> None:
        cap = body_cap(self.limit)
        if cap is not None and content_length > cap:
            raise UploadTooLarge(
                f"The request is {content_length:,} bytes; files here are limited to {self.limit:,} bytes",
                limit=self.limit,
            )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self._drop_spooled()
            raise UploadTooLarge(f"The file is larger than {self.limit:,} bytes", limit=self.limit, field=self.field_name)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler builds the file

    def _drop_spooled(self) -> None:
        """Close (and so delete) the temp file or buffer the next handlers hold for the refused upload."""
        for handler in self.request.upload_handlers if self.request is not None else []:
            spooled = getattr(handler, "file", None)
            if spooled is not None:
                spooled.close()


def upload_limit(limit: int) -> Callable:
    """Limit an API operation's uploads (with ninja's `decorate_view`); the API answers UploadTooLarge with 413."""

    def decorate(run: Callable) -> Callable:
        @wraps(run)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            request.upload_handlers.insert(0, LimitedUploadHandler(request, limit))
            return run(request, *args, **kwargs)

        return limited

    return decorate


def page_upload_limit(limit: int, *, too_large: Callable[..., HttpResponse]) -> Callable:
    """Limit a page's uploads; `too_large(request, error, *args, **kwargs)` renders the refusal (status 413).

    CSRF protection reads the body, so it is applied here, once the limiting handler is in place.
    """

    def decorate(view: Callable) -> Callable:
        checked = csrf_protect(view)

        @csrf_exempt  # NOTE: checked by `checked` below, after the handler is installed
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            request.upload_handlers.insert(0, LimitedUploadHandler(request, limit))
            try:
                return checked(request, *args, **kwargs)
            except UploadTooLarge as error:
                # NOTE: empty POST and FILES, so nothing tries to parse the half-read body again.
                request._mark_post_parse_error()  # type: ignore[attr-defined]
                return too_large(request, error, *args, **kwargs)

        return limited

    return decorate

"""POST a multipart body through Django's test client and count how much of it the server read."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, FakePayload, encode_multipart


class CountingPayload(FakePayload):
    def __init__(self, body: bytes):
        super().__init__(body)
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size: int = -1, /) -> bytes:
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def post_counted(client: Client, path: str, fields: dict[str, Any], *, content_length: int | None = None,
                 headers: dict[str, str] | None = None) -> tuple[Any, int, int]:
    """(response, bytes the server read, bytes in the body); `content_length` overrides the header."""
    body = encode_multipart(BOUNDARY, fields)
    payload = CountingPayload(body)
    extra: dict[str, Any] = {"wsgi.input": payload}
    if content_length is not None:
        extra["CONTENT_LENGTH"] = str(content_length)
    response = client.generic("POST", path, body, content_type=MULTIPART_CONTENT, headers=headers, **extra)
    return response, payload.bytes_read, len(body)

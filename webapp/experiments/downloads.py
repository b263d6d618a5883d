"""Stored files (artifacts, code) streamed back through Django, from a local folder or an S3 bucket alike.

Callers check permissions first; this only reads. Nothing here assumes a local path.
"""

from __future__ import annotations

from typing import IO

from botocore.exceptions import ClientError
from django.core.files.storage import default_storage
from django.http import FileResponse
from storages.backends.s3 import S3File


def open_stored(path: str) -> tuple[IO[bytes], int]:
    """(a stream of the file, its size); FileNotFoundError when storage has no such file."""
    handle = default_storage.open(path, "rb")
    size = handle.size
    if not isinstance(handle, S3File):
        return handle, size
    # NOTE: S3File would download the whole object before the first byte is read; the GET's body streams.
    try:
        body = handle.obj.get()["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):  # deleted since the HEAD
            raise FileNotFoundError(path) from None
        raise
    finally:
        handle.close()
    return body, size


def stored_file_response(path: str, filename: str, *, content_type: str | None = None) -> FileResponse:
    """The stored file as an attachment named `filename`; FileNotFoundError when it is missing."""
    stream, size = open_stored(path)
    response = FileResponse(stream, as_attachment=True, filename=filename or "download", content_type=content_type)
    response["Content-Length"] = str(size)
    response["X-Content-Type-Options"] = "nosniff"
    return response

"""Uploaded experiment code: one .py file or a .zip project, checked before anything is stored."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass

from webapp.experiments.spec import SpecError

MAX_CODE_BYTES = 5 * 1024 * 1024  # the upload itself
MAX_UNPACKED_BYTES = 50 * 1024 * 1024  # everything in a zip, uncompressed
MAX_ZIP_FILES = 2000
DEFAULT_ENTRYPOINT = "main.py"


@dataclass(frozen=True)
class CodeBundle:
    data: bytes
    kind: str  # "py" or "zip"
    entrypoint: str
    sha256: str

    @property
    def storage_name(self) -> str:
        """Content-addressed, so stored code can never change under a run."""
        return f"code/{self.sha256}.{self.kind}"


def code_bundle_from_upload(filename: str, data: bytes, *, entrypoint: str | None = None) -> CodeBundle:
    """Validate an uploaded file; SpecError (field "code") on anything unsafe or unusable."""
    if len(data) > MAX_CODE_BYTES:
        raise _bad(f"is {len(data):,} bytes; the limit is {MAX_CODE_BYTES:,}")
    if not data:
        raise _bad("is empty")
    digest = hashlib.sha256(data).hexdigest()
    lower = filename.lower()
    if lower.endswith(".py"):
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("is not UTF-8 text") from None
        if "\x00" in source:
            raise _bad("contains NUL bytes")
        return CodeBundle(data=data, kind="py", entrypoint=posixpath.basename(filename) or "main.py", sha256=digest)
    if lower.endswith(".zip"):
        return CodeBundle(data=data, kind="zip", entrypoint=_check_zip(data, entrypoint), sha256=digest)
    raise _bad("must be a .py file or a .zip project")


def safe_member_name(name: str) -> str | None:
    """The normalised relative path of a zip member, or None when it would escape the run folder."""
    if "\\" in name or "\x00" in name:
        return None
    normalised = posixpath.normpath(name)
    if normalised.startswith(("/", "../")) or normalised in ("..", ".") or ":" in normalised.split("/")[0]:
        return None
    return normalised


def _check_zip(data: bytes, entrypoint: str | None) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise _bad("is not a valid zip archive") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_FILES:
            raise _bad(f"holds {len(members)} files; the limit is {MAX_ZIP_FILES}")
        if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
            raise _bad(f"unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")
        names = set()
        for member in members:
            safe = safe_member_name(member.filename)
            if safe is None:
                raise _bad(f"member {member.filename!r} would be written outside the run folder")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise _bad(f"member {member.filename!r} is a symbolic link")
            names.add(safe)
    chosen = entrypoint or DEFAULT_ENTRYPOINT
    if chosen not in names:
        raise SpecError([{"field": "entrypoint", "message": f"{chosen!r} is not in the zip"}])
    return chosen


def unpack_zip(data: bytes, destination: str) -> None:
    """Extract a bundle that passed `code_bundle_from_upload` into `destination`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            safe = safe_member_name(member.filename)
            if safe is None or stat.S_ISLNK(member.external_attr >> 16):
                raise ValueError(f"unsafe zip member {member.filename!r}")
            target = posixpath.join(destination, safe)
            if member.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(posixpath.dirname(target), exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                sink.write(source.read())


def _bad(message: str) -> SpecError:
    return SpecError([{"field": "code", "message": message}])

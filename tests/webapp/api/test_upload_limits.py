"""Uploads past their endpoint's limit get 413 before Django spools them: nothing read past the limit, nothing stored."""

from __future__ import annotations

import io

import pytest

from webapp.api.results import MAX_ARTIFACT_BYTES
from webapp.experiments.code import MAX_CODE_BYTES
from webapp.experiments.models import Artifact, Run
from webapp.uploads import body_cap

from ..counting_body import post_counted


def _file(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def upload_dir(settings, tmp_path):
    """Where Django spools large uploads; empty again after every refused request."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def _post(world, path, fields, **kwargs):
    api = world.api("owner")
    return post_counted(api.client, path, fields, headers=api._headers(None), **kwargs)


def test_code_past_the_limit_stops_the_read_at_the_limit(world, upload_dir):
    fields = {"project": world.path, "code": _file("big.py", b"#" * (MAX_CODE_BYTES + 2 * 1024 * 1024))}
    response, read, total = _post(world, "/api/runs/upload", fields)
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "too_large" and f"{MAX_CODE_BYTES:,}" in body["message"]
    assert body["fields"] == [{"field": "code", "message": f"larger than {MAX_CODE_BYTES:,} bytes"}]
    assert read < total - 1024 * 1024  # the rest of the body was never read
    assert Run.objects.count() == 0 and list(upload_dir.iterdir()) == []


def test_a_content_length_no_valid_upload_could_have_is_refused_before_reading(world, upload_dir):
    response, read, _ = _post(world, "/api/runs/upload", {"project": world.path, "code": _file("a.py", b"print(1)")},
                              content_length=body_cap(MAX_CODE_BYTES) + 1)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert read == 0 and Run.objects.count() == 0


def test_an_artifact_declared_past_its_limit_is_refused_before_reading(world):
    run = world.submit()
    response, read, _ = _post(world, f"/api/runs/{run.id}/artifacts", {"file": _file("w.bin", b"w")},
                              content_length=body_cap(MAX_ARTIFACT_BYTES) + 1)
    assert response.status_code == 413 and f"{MAX_ARTIFACT_BYTES:,}" in response.json()["message"]
    assert read == 0 and Artifact.objects.count() == 0


def test_an_upload_within_the_limit_still_goes_through(world):
    response, read, total = _post(world, "/api/runs/upload", {"project": world.path, "code": _file("t.py", b"print(1)\n")})
    assert response.status_code == 201, response.content
    assert read == total

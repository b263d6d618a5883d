"""Artifacts, checkpoints and code in an S3-compatible bucket (a real moto server): store, list, download, replace, delete."""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from django.core.files.storage import default_storage
from django.test import Client
from services import require

from webapp.config import load_config
from webapp.experiments.models import Artifact
from webapp.experiments.submit import CodeUpload, run_submit
from worker.events import EventIngestor
from worker.workdir import prepare_workdir

KEY_ID, SECRET = "kiln-test-key", "kiln-test-secret"
PREFIX = "team-a/kiln"


def _moto_server() -> str | None:
    return shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server in a subprocess on a free local port."""
    binary = _moto_server()
    require(binary is not None, "moto_server is not installed (pip install -e '.[dev]')")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def bucket(s3_endpoint, settings, tmp_path):
    """A fresh bucket, made Django's default storage through the same settings a deployment uses."""
    name = f"kiln-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    client.create_bucket(Bucket=name)
    config = load_config({
        "KILN_DATA_DIR": str(tmp_path), "KILN_S3_BUCKET": name, "KILN_S3_ENDPOINT_URL": s3_endpoint,
        "KILN_S3_ACCESS_KEY_ID": KEY_ID, "KILN_S3_SECRET_ACCESS_KEY": SECRET, "KILN_S3_PREFIX": PREFIX,
    })
    settings.STORAGES = {**settings.STORAGES, "default": config.default_storage}

    def keys() -> list[str]:
        return sorted(item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", []))

    return keys


def _file(name: str, data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_an_artifact_goes_to_the_bucket_and_comes_back_byte_for_byte(world, bucket):
    run = world.submit()
    data = bytes(range(256)) * 4096  # 1 MiB: streamed in several chunks
    created = world.api("editor").multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("weights.bin", data)})
    assert created.status_code == 201, created.content
    artifact = created.json()
    assert bucket() == [f"{PREFIX}/runs/{run.id}/artifacts/weights.bin"]
    assert world.api("viewer").get(f"/api/runs/{run.id}/artifacts").json() == [artifact]
    download = world.api("viewer").get(f"/api/runs/{run.id}/artifacts/{artifact['id']}/download")
    body = b"".join(download.streaming_content)
    assert download.status_code == 200 and body == data and int(download["Content-Length"]) == len(data)
    assert hashlib.sha256(body).hexdigest() == artifact["sha256"] == download["X-Checksum-Sha256"]
    assert world.api("outsider").get(f"/api/runs/{run.id}/artifacts/{artifact['id']}/download").status_code == 404


def test_replacing_an_artifact_leaves_one_object_and_deleting_the_run_removes_it(
    world, bucket, django_capture_on_commit_callbacks
):
    run = world.submit()
    api = world.api("owner")
    api.multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("model.bin", b"old weights")})
    with django_capture_on_commit_callbacks(execute=True):  # the old object goes once the replacement commits
        replaced = api.multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("model.bin", b"new weights")}).json()
    assert Artifact.objects.filter(run_id=run.id).count() == 1 and len(bucket()) == 1
    body = b"".join(api.get(f"/api/runs/{run.id}/artifacts/{replaced['id']}/download").streaming_content)
    assert body == b"new weights"
    assert api.post(f"/api/runs/{run.id}/cancel").json()["cancelled"] is True
    assert api.delete(f"/api/runs/{run.id}").status_code == 204
    assert bucket() == []


def test_a_file_missing_from_the_bucket_is_a_clean_404(world, bucket):
    run = world.submit()
    artifact = world.api("owner").multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("a.txt", b"a")}).json()
    default_storage.delete(Artifact.objects.get(id=artifact["id"]).storage_path)  # gone behind Kiln's back
    assert bucket() == []
    response = world.api("owner").get(f"/api/runs/{run.id}/artifacts/{artifact['id']}/download")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_code_and_artifact_pages_download_from_the_bucket(world, bucket):
    owner = world.users["owner"]
    run = run_submit(user=owner, project=world.project, spec={}, code=CodeUpload("train.py", b"print('hi')\n")).runs[0]
    assert any(key.startswith(f"{PREFIX}/code/") for key in bucket())
    world.api("owner").multipart(f"/api/runs/{run.id}/artifacts", {"file": _file("notes.txt", b"hello")})
    artifact = Artifact.objects.get(run_id=run.id)
    client = Client()
    client.force_login(owner)
    code = client.get(f"/runs/{run.id}/code/")
    assert code.status_code == 200 and b"".join(code.streaming_content) == b"print('hi')\n"
    page = client.get(f"/runs/{run.id}/artifacts/{artifact.id}/")
    assert page.status_code == 200 and b"".join(page.streaming_content) == b"hello"


def test_a_worker_checkpoint_goes_to_the_bucket_and_the_next_attempt_resumes_from_it(world, bucket, tmp_path):
    run = world.submit()
    run_dir = tmp_path / "job"
    (run_dir / "checkpoints").mkdir(parents=True)
    weights = b"\x00safetensors" * 1000
    (run_dir / "checkpoints" / "step-3.safetensors").write_bytes(weights)
    notes: list[str] = []
    ingestor = EventIngestor(run.id, run_dir, notes.append)
    ingestor.ingest([{"type": "checkpoint", "name": "step-3.safetensors", "path": "checkpoints/step-3.safetensors", "step": 3}])
    assert notes == [] and ingestor.checkpoints == [3]
    assert bucket() == [f"{PREFIX}/runs/{run.id}/checkpoints/checkpoints/step-3.safetensors"]
    workdir = prepare_workdir(run, 2, tmp_path / "data", owner_uid=None)
    assert workdir.resume is not None and workdir.resume.read_bytes() == weights and workdir.resume_step == 3

"""The MLflow client's artifacts through Kiln's proxied artifact endpoints into an S3 bucket (a real moto server)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from webapp.experiments.models import Artifact
from webapp.experiments.soft_delete import deleted_purge

from ..api.test_artifacts_s3 import PREFIX, bucket, s3_endpoint  # noqa: F401  (fixtures)

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def test_log_artifact_log_dict_list_download_and_delete_against_an_s3_bucket(kiln, bucket, tmp_path):  # noqa: F811
    mlflow.set_experiment("s3")
    data = bytes(range(256)) * 4096  # 1 MiB, streamed through in chunks
    (tmp_path / "weights.bin").write_bytes(data)
    with mlflow.start_run() as active:
        mlflow.log_artifact(str(tmp_path / "weights.bin"), artifact_path="ckpt")
        mlflow.log_dict({"layers": [64, 10]}, "config.json")
        run_id = active.info.run_id
    assert bucket() == [f"{PREFIX}/runs/{run_id}/artifacts/ckpt/weights.bin", f"{PREFIX}/runs/{run_id}/artifacts/config.json"]

    client = MlflowClient()
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [("ckpt", True), ("config.json", False)]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run_id, "ckpt")] == [("ckpt/weights.bin", len(data))]
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="", dst_path=str(tmp_path / "dl")))
    assert (local / "ckpt" / "weights.bin").read_bytes() == data
    assert json.loads((local / "config.json").read_text()) == {"layers": [64, 10]}

    client.delete_run(run_id)  # soft: the files stay while the run can be restored, then go with its purge
    assert len(bucket()) == 2 and client.list_artifacts(run_id)
    assert deleted_purge(now=timezone.now() + timedelta(days=31)) == 1
    assert not Artifact.objects.exists() and bucket() == []

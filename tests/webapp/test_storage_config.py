"""Artifact storage settings: the local folder by default, an S3 bucket when KILN_S3_BUCKET is set."""

import pytest

from webapp.config import ConfigError, load_config

SECRET = "s3-secret-that-must-never-show"
S3 = {
    "KILN_S3_BUCKET": "kiln-artifacts",
    "KILN_S3_ACCESS_KEY_ID": "AKIAKILN",
    "KILN_S3_SECRET_ACCESS_KEY": SECRET,
}


def test_without_a_bucket_artifacts_live_in_the_data_folder(tmp_path):
    config = load_config({"KILN_DATA_DIR": str(tmp_path)})
    assert config.s3 is None
    assert config.default_storage == {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "artifacts")},
    }


def test_a_bucket_switches_to_the_s3_backend_with_every_option_given(tmp_path):
    env = {**S3, "KILN_DATA_DIR": str(tmp_path), "KILN_S3_ENDPOINT_URL": "http://minio:9000", "KILN_S3_PREFIX": "/team/kiln/"}
    storage = load_config(env).default_storage
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert (options["bucket_name"], options["access_key"], options["secret_key"]) == ("kiln-artifacts", "AKIAKILN", SECRET)
    assert (options["endpoint_url"], options["location"], options["region_name"]) == ("http://minio:9000", "team/kiln", "us-east-1")
    assert options["file_overwrite"] is False and options["addressing_style"] == "path"
    assert options["security_token"] is None and options["session_profile"] is None  # nothing read from AWS_* variables


def test_the_secret_never_shows_in_the_config_repr(tmp_path):
    config = load_config({**S3, "KILN_DATA_DIR": str(tmp_path)})
    assert SECRET not in repr(config) and SECRET not in repr(config.s3)
    assert "AKIAKILN" in repr(config.s3)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KILN_S3_BUCKET": "kiln"}, "KILN_S3_ACCESS_KEY_ID"),
        ({"KILN_S3_BUCKET": "kiln", "KILN_S3_ACCESS_KEY_ID": "id"}, "KILN_S3_SECRET_ACCESS_KEY"),
        ({"KILN_S3_SECRET_ACCESS_KEY": SECRET}, "KILN_S3_SECRET_ACCESS_KEY is set but KILN_S3_BUCKET is not"),
        ({"KILN_S3_ENDPOINT_URL": "http://minio:9000"}, "KILN_S3_ENDPOINT_URL is set but KILN_S3_BUCKET is not"),
        ({**S3, "KILN_S3_BUCKET": "a/b"}, "KILN_S3_BUCKET"),
        ({**S3, "KILN_S3_ENDPOINT_URL": "minio:9000"}, "KILN_S3_ENDPOINT_URL"),
        ({**S3, "KILN_S3_ENDPOINT_URL": "http://minio:port"}, "KILN_S3_ENDPOINT_URL"),
        ({**S3, "KILN_S3_PREFIX": "kiln/../etc"}, "KILN_S3_PREFIX"),
    ],
)
def test_a_bad_s3_setting_names_the_variable_and_not_the_secret(tmp_path, env, named):
    with pytest.raises(ConfigError, match=named) as raised:
        load_config({"KILN_DATA_DIR": str(tmp_path), **env})
    assert SECRET not in str(raised.value)

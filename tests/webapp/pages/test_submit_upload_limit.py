"""The submit page refuses a code upload past the limit with a form error (413) before spooling it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.experiments.code import MAX_CODE_BYTES
from webapp.experiments.models import Run
from webapp.uploads import body_cap

from ..counting_body import post_counted

pytestmark = pytest.mark.django_db
CODE_FORM = {"mode": "code", "entrypoint": "", "resources.gpus": "0", "resources.max_minutes": "5", "priority": "0"}


def test_code_past_the_limit_gets_a_form_error_and_is_not_read_to_the_end(world, settings, tmp_path):
    spool = tmp_path / "uploads"
    spool.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(spool)
    before = Run.objects.count()
    big = SimpleUploadedFile("big.py", b"#" * (MAX_CODE_BYTES + 2 * 1024 * 1024))
    response, read, total = post_counted(world.client("editor"), f"/p/{world.project.id}/submit/", {**CODE_FORM, "code_file": big})
    assert response.status_code == 413
    content = response.content.decode()
    assert f"The file is larger than {MAX_CODE_BYTES:,} bytes." in content and 'class="field-error"' in content
    assert read < total - 1024 * 1024
    assert Run.objects.count() == before and list(spool.iterdir()) == []


def test_a_declared_length_past_the_cap_is_refused_before_reading(world):
    before = Run.objects.count()
    response, read, _ = post_counted(world.client("editor"), f"/p/{world.project.id}/submit/",
                                     {**CODE_FORM, "code_file": SimpleUploadedFile("a.py", b"print(1)")},
                                     content_length=body_cap(MAX_CODE_BYTES) + 1)
    assert response.status_code == 413 and read == 0 and Run.objects.count() == before


def test_anonymous_and_outsider_uploads_are_not_served_the_form(world):
    fields = {**CODE_FORM, "code_file": SimpleUploadedFile("big.py", b"#" * (MAX_CODE_BYTES + 1))}
    anonymous, _, _ = post_counted(world.client("anonymous"), f"/p/{world.project.id}/submit/", fields)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    outsider, _, _ = post_counted(world.client("outsider"), f"/p/{world.project.id}/submit/", fields)
    assert outsider.status_code == 404

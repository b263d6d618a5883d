"""The `kiln` command as a user meets it."""

import json
import os
import subprocess
import sys


def _kiln(*args, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"KILN_DATA_DIR": str(tmp_path), **env_extra})
    return subprocess.run(
        [sys.executable, "-m", "webapp.client.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_bad_database_url_stops_start_up_with_one_line_naming_it(tmp_path):
    result = _kiln("setup", env_extra={"DATABASE_URL": "mysql://root@localhost/kiln"}, tmp_path=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DATABASE_URL" in lines[0]
    assert not (tmp_path / "kiln.sqlite3").exists()


def test_a_database_that_does_not_answer_stops_start_up_with_one_line_and_no_password(tmp_path, free_port):
    url = f"postgresql://kiln:hunter2-secret@127.0.0.1:{free_port}/kiln"
    result = _kiln("setup", env_extra={"DATABASE_URL": url}, tmp_path=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"postgresql://kiln:***@127.0.0.1:{free_port}/kiln" in lines[0], result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_setup_creates_the_admin_once_and_prints_a_generated_password_once(tmp_path):
    first = _kiln("setup", env_extra={"KILN_ADMIN_USER": "boss"}, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Created the first admin account 'boss' with password: " in first.stdout
    second = _kiln("setup", env_extra={"KILN_ADMIN_USER": "boss"}, tmp_path=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "password" not in second.stdout
    assert (tmp_path / "kiln.sqlite3").exists()


def test_kiln_without_a_command_prints_help():
    result = subprocess.run([sys.executable, "-m", "webapp.client.cli"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "run" in result.stdout and "worker" in result.stdout and "scheduler" in result.stdout


def test_setup_in_production_collects_static_files_that_the_web_app_serves_by_hashed_name(tmp_path):
    production = {"KILN_MODE": "production", "SECRET_KEY": "s" * 40, "KILN_ALLOWED_HOSTS": "localhost",
                  "KILN_STATIC_ROOT": str(tmp_path / "static"), "KILN_DEMO": "false"}
    result = _kiln("setup", env_extra=production, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())["paths"]
    hashed = manifest["dashboards/compare.js"]
    assert hashed != "dashboards/compare.js" and (tmp_path / "static" / (hashed + ".gz")).exists()
    probe = (  # the production app, as `kiln web` runs it: whitenoise serves the manifest's names, cached for good
        "import django; django.setup(); from django.test import Client; from django.templatetags.static import static;"
        "url = static('dashboards/compare.js'); r = Client().get(url, HTTP_HOST='localhost', HTTP_ACCEPT_ENCODING='gzip');"
        "print(url, r.status_code, r['Cache-Control'], r.get('Content-Encoding'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"KILN_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "webapp.settings", **production})
    served = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert served.stdout.split() == [f"/static/{hashed}", "200", "max-age=315360000,", "public,", "immutable", "gzip"], served

"""Docker cannot run here, so the deployment files are checked by reading them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from webapp.client.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
KILN_SERVICES = ["web", "scheduler", "worker"]


def _kiln_invocations(command: list[str]) -> list[list[str]]:
    """Every `kiln ...` call in a service command, including those inside `sh -c "a && b"`."""
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in re.split(r"&&|;", command[2])]
    return [command]


def test_compose_has_the_five_services_and_named_volumes():
    assert set(COMPOSE["services"]) == {"postgres", "redis", "web", "scheduler", "worker"}
    assert {"postgres-data", "artifacts"} <= set(COMPOSE["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in COMPOSE["services"]["postgres"]["volumes"]


@pytest.mark.parametrize("service", KILN_SERVICES)
def test_each_kiln_service_command_exists_in_the_project(service):
    spec = COMPOSE["services"][service]
    assert "artifacts:/data" in spec["volumes"]
    assert spec["env_file"][0]["path"] == ".env.example"
    subcommands = _parser()._subparsers._group_actions[0].choices  # argparse's own registry
    for call in _kiln_invocations(spec["command"]):
        call = [word for word in call if word != "exec"]
        assert call[0] == "kiln", call
        parsed = subcommands[call[1]].parse_args(call[2:])  # exits (fails the test) on unknown options
        assert parsed.handler is not None


def test_worker_reserves_nvidia_gpus():
    devices = COMPOSE["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


def test_env_example_sets_every_variable_the_services_need():
    example = dict(
        line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    for name in ("KILN_MODE", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "KILN_DATA_DIR", "KILN_ALLOWED_HOSTS"):
        assert name in example, name
    assert example["KILN_MODE"] == "production"
    assert example["SECRET_KEY"] == "", "the example must not ship a usable secret"
    assert f"{example['POSTGRES_USER']}:{example['POSTGRES_PASSWORD']}@postgres:5432/{example['POSTGRES_DB']}" in example["DATABASE_URL"]


def test_dockerfile_installs_each_top_level_package_and_the_kiln_command():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("engine", "webapp", "worker", "scheduler"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert 'CMD ["kiln", "web"' in dockerfile


def test_the_worker_gets_what_bubblewrap_needs_and_no_more():
    worker = COMPOSE["services"]["worker"]
    assert str(worker["user"]) == "0"  # per-run uids for jobs
    assert sorted(worker["cap_add"]) == ["NET_ADMIN", "SYS_ADMIN"]
    assert sorted(worker["security_opt"]) == ["apparmor=unconfined", "systempaths=unconfined"]
    assert not worker.get("privileged") and "seccomp" not in " ".join(worker["security_opt"])
    for service in ("web", "scheduler"):
        assert "cap_add" not in COMPOSE["services"][service] and "user" not in COMPOSE["services"][service]

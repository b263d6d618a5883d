"""Prepare a Kiln installation: data folders, database schema, the first admin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from webapp.accounts.services import first_admin_ensure
from webapp.config import PRODUCTION
from webapp.demo import demo_project_create


def prepare_data_dirs() -> None:
    """Create the data, artifact and (server-less broker) queue folders."""
    config = settings.CONFIG
    folders = [config.data_dir, config.storage_dir]
    if not config.redis_url:
        options = config.broker_transport_options
        folders += [Path(options["data_folder_in"]), Path(options["control_folder"])]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


def bootstrap(*, announce: Callable[[str], None] = print) -> None:
    """Idempotent, so it runs at every start: folders, migrations, static files (production), the first admin."""
    config = settings.CONFIG
    prepare_data_dirs()
    call_command("migrate", interactive=False, verbosity=0)
    if config.mode == PRODUCTION:  # whitenoise serves STATIC_ROOT by its manifest: hashed names, cached for a year
        call_command("collectstatic", interactive=False, verbosity=0)
    created = first_admin_ensure(username=config.admin_user, password=config.admin_password)
    if created and config.demo:
        project = demo_project_create(username=created.username)
        announce(f"Submitted {project.runs.count()} demo runs to the project '{project.name}'.")
    if created and created.generated_password:
        announce(
            f"Created the first admin account '{created.username}' with password: {created.generated_password}\n"
            "This password is shown only once: change it after logging in."
        )
    elif created:
        announce(f"Created the first admin account '{created.username}' from KILN_ADMIN_PASSWORD.")

"""The `kiln` command.

Server commands (run, setup, web, scheduler, worker) load Django lazily, inside the
command; the client commands that talk to a Kiln server over HTTP never import it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

SETTINGS_MODULE = "webapp.settings"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiln", description="Kiln: deep-learning experiments, self-hosted.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    run = command("run", _run, "Run Kiln on one machine: web server, scheduler and a local worker.")
    run.add_argument("--bind", help="address:port for the web server (default: KILN_BIND or 127.0.0.1:8000)")
    command("setup", _setup, "Create data folders, migrate the database and create the first admin.")
    web = command("web", _web, "Serve the web app and API with gunicorn.")
    web.add_argument("--bind", help="address:port (default: KILN_BIND or 127.0.0.1:8000)")
    web.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: 2)")
    command("scheduler", _scheduler, "Run the scheduling loop.")
    command("worker", _worker, "Run a worker that executes jobs on this machine's GPUs or CPUs.")
    return parser


def _django() -> None:
    """Validate the configuration (one clear line on error), then set Django up."""
    from webapp.config import ConfigError, load_config

    try:
        load_config()
    except ConfigError as exc:
        print(f"kiln: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()


def _setup(args: argparse.Namespace) -> int:
    _django()
    from webapp.bootstrap import bootstrap

    bootstrap()
    return 0


def _run(args: argparse.Namespace) -> int:
    _django()
    from django.conf import settings

    from webapp.bootstrap import bootstrap
    from webapp.supervisor import Child, supervise

    bootstrap()
    bind = args.bind or settings.CONFIG.bind
    me = [sys.executable, "-m", "webapp.client.cli"]
    print(f"Kiln is starting on http://{bind}/  (Ctrl-C stops everything)", flush=True)
    return supervise(
        [
            Child("web", [*me, "web", "--bind", bind]),
            Child("scheduler", [*me, "scheduler"]),
            Child("worker", [*me, "worker"]),
        ]
    )


def _web(args: argparse.Namespace) -> int:
    _django()
    from django.conf import settings

    from webapp.bootstrap import prepare_data_dirs

    prepare_data_dirs()
    bind = args.bind or settings.CONFIG.bind
    argv = [
        sys.executable, "-m", "gunicorn", "webapp.wsgi:application",
        "--bind", bind,
        "--workers", str(args.workers),
        "--threads", "4",
        "--graceful-timeout", "5",
        "--access-logfile", "-",
        "--no-control-socket",
    ]
    os.execv(sys.executable, argv)  # noqa: S606 -- replaces this process with gunicorn
    return 0  # pragma: no cover


def _scheduler(args: argparse.Namespace) -> int:
    _django()
    from django.conf import settings

    from scheduler.loop import run_scheduler
    from webapp.bootstrap import prepare_data_dirs

    prepare_data_dirs()
    run_scheduler(settings.CONFIG.scheduler_tick_seconds)
    return 0


def _worker(args: argparse.Namespace) -> int:
    _django()
    from webapp.bootstrap import prepare_data_dirs
    from worker.main import run_worker

    prepare_data_dirs()
    run_worker()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `kiln` command.

Server commands (run, setup, web, scheduler, worker) load Django lazily, inside the
command; the client commands that talk to a Kiln server over HTTP never import it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webapp.config import Config

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
    worker = command("worker", _worker, "Run a worker that executes jobs on this machine's GPUs or CPUs.")
    worker.add_argument("--check-isolation", action="store_true",
                        help="run the sandbox's isolation canary, print what it found and exit (1: not isolated)")

    login = command("login", _login, "Sign in to a Kiln server and store an API token for the other commands.")
    login.add_argument("--url", help="the server (default: KILN_URL, the stored one, or http://127.0.0.1:8000)")
    login.add_argument("--username", help="your username (asked when omitted)")
    submit = command("submit", _submit, "Submit a run: a .py/.zip is code, a .yaml/.yml/.json is a config.")
    submit.add_argument("file", metavar="FILE|CONFIG")
    submit.add_argument("--config", help="a YAML/JSON config to go with code (params, resources, sweep, ...)")
    submit.add_argument("--project", default=os.environ.get("KILN_PROJECT"), required="KILN_PROJECT" not in os.environ,
                        help="project id or owner/slug (default: KILN_PROJECT)")
    submit.add_argument("--gpus", type=int, help="GPUs per run")
    submit.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="set a param (repeatable)")
    projects = command("projects", _projects, "List the projects you can see; `kiln projects create NAME` adds one.")
    create = projects.add_subparsers(title="actions", metavar="ACTION").add_parser(
        "create", help="create a project", description="Create a personal project, or a team's with --team."
    )
    create.set_defaults(handler=_project_create)
    create.add_argument("name")
    create.add_argument("--team", help="slug of the owning team (you must be its editor or admin)")
    create.add_argument("--visibility", choices=["private", "team", "public"], default="private")
    create.add_argument("--description", default="")
    teams = command("teams", _teams, "List your teams; `kiln teams leave TEAM` leaves one.")
    leave = teams.add_subparsers(title="actions", metavar="ACTION").add_parser(
        "leave", help="leave a team", description="Leave a team (its last admin cannot)."
    )
    leave.set_defaults(handler=_team_leave)
    leave.add_argument("team", metavar="TEAM", help="the team's slug")
    invitations = command("invitations", _invitations, "List your team invitations; accept or decline one.")
    answers = invitations.add_subparsers(title="actions", metavar="ACTION")
    for action, handler in (("accept", _invitation_accept), ("decline", _invitation_decline)):
        answer = answers.add_parser(action, help=f"{action} a team's invitation", description=f"{action.capitalize()} a team's invitation.")
        answer.set_defaults(handler=handler)
        answer.add_argument("team", metavar="TEAM", help="the team's slug")
    command("workers", _workers, "List the workers: state, and whether each one's sandbox isolates code runs.")
    runs = command("runs", _runs, "List runs as a table.")
    runs.add_argument("--project", help="project id or owner/slug (default: every project you can see)")
    runs.add_argument("--query", default="", help="e.g. 'state IN (running, queued) AND params.lr < 0.01'")
    runs.add_argument("--sort", default="", help="e.g. -metrics.accuracy")
    runs.add_argument("--limit", type=int, default=50, help="at most this many runs (default: 50)")
    logs = command("logs", _logs, "Print a run's log; -f follows it until the run finishes.")
    logs.add_argument("run", type=int, metavar="RUN")
    logs.add_argument("-f", "--follow", action="store_true")
    cancel = command("cancel", _cancel, "Cancel a run.")
    cancel.add_argument("run", type=int, metavar="RUN")
    download = command("download", _download, "Download a run's artifacts.")
    download.add_argument("run", type=int, metavar="RUN")
    download.add_argument("--dest", default=".", help="folder to write into (default: the current one)")
    download.add_argument("--model", metavar="NAME", help="download only this logged model's file")
    download.add_argument("--format", choices=["onnx", "engine"], default="onnx",
                          help="with --model: the ONNX file or the engine.jit file (default: onnx)")
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


def _bootstrap() -> None:
    """Folders, migrations, the first admin; a database that does not answer stops start-up with one line."""
    from django.conf import settings
    from django.core.exceptions import ValidationError
    from django.db import OperationalError

    from webapp.bootstrap import bootstrap

    try:
        bootstrap()
    except ValidationError as exc:  # the first admin's name is taken (KILN_ADMIN_USER)
        print(f"kiln: cannot create the first admin: {' '.join(exc.messages)}", file=sys.stderr)
        raise SystemExit(2) from None
    except OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = _without_password(settings.CONFIG.database_url)
        print(f"kiln: cannot use the database at {where}: {reason}", file=sys.stderr)
        raise SystemExit(2) from None


def _without_password(url: str) -> str:
    """A database URL fit to print: the password replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _isolation_hint(config: Config) -> None:
    """One line when code runs cannot be isolated here (the worker's canary gives the details)."""
    from worker.sandbox import bubblewrap_hint, bwrap_path

    if bwrap_path(config.bwrap) is None:
        allowed = " (KILN_ALLOW_UNISOLATED_CODE is set: they run NOT isolated)" if config.allow_unisolated_code else ""
        print(f"kiln: {bubblewrap_hint()}{allowed}", flush=True)


def _setup(args: argparse.Namespace) -> int:
    _django()
    _bootstrap()
    return 0


def _run(args: argparse.Namespace) -> int:
    _django()
    from django.conf import settings

    from webapp.supervisor import Child, Crash, state_path, supervise
    from worker.identity import EXIT_NAME_TAKEN

    _bootstrap()
    config = settings.CONFIG
    bind = args.bind or config.bind
    me = [sys.executable, "-m", "webapp.client.cli"]

    def record(crash: Crash) -> None:
        if crash.name == "worker":  # the restarted worker takes its row over; the count is the supervisor's
            from django.db import close_old_connections

            from webapp.cluster.services import worker_record_restart

            close_old_connections()
            worker_record_restart(name=config.worker_name, error=crash.error)

    from webapp.cluster.services import worker_restarts_reset

    worker_restarts_reset(name=config.worker_name)
    print(f"Kiln is starting on http://{bind}/  (Ctrl-C stops everything)", flush=True)
    _isolation_hint(config)
    return supervise(
        [
            Child("web", [*me, "web", "--bind", bind]),
            Child("scheduler", [*me, "scheduler"]),
            Child("worker", [*me, "worker"], fatal_exit_codes=frozenset({EXIT_NAME_TAKEN})),
        ],
        state_file=state_path(config.data_dir),
        on_crash=record,
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
        # NOTE: measured on 2 cores (tests/benchmarks/bench_api.py): threaded workers, one per core, beat
        # 4 sync or 4x2 threaded workers on CPU per request, and keep clients' connections alive.
        "--workers", str(args.workers),
        "--worker-class", "gthread",
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
    if args.check_isolation:
        return _check_isolation()
    run_worker()
    return 0


def _check_isolation() -> int:
    """`kiln worker --check-isolation`: each canary check, then the summary; exit 1 when isolation does not hold."""
    from django.conf import settings

    from webapp.cluster.services import isolation_holds
    from worker.canary import run_canary

    verdict = run_canary(settings.CONFIG)
    for check in verdict["checks"]:
        print(f"{'held' if check['held'] else 'FAILED':6}  {check['name']}: {check['detail']}")
    print(verdict["summary"])
    return 0 if isolation_holds(verdict) else 1


# Client commands: HTTP only, through webapp.client.client; never Django. ---------------------------------

FOLLOW_POLL_SECONDS = 1.0
_HINTS = {(404, "No such project"): " (`kiln projects` lists yours; `kiln projects create NAME` adds one)"}


def _client_command(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn a KilnError into one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        from webapp.client.client import KilnError

        try:
            return handler(args)
        except KilnError as exc:
            hint = _HINTS.get((exc.status, exc.message), "; run `kiln login` first" if exc.status == 401 else "")
            print(f"kiln: error: {exc}{hint}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"kiln: error: {exc}", file=sys.stderr)
            return 1

    run.__name__ = handler.__name__
    return run


@_client_command
def _login(args: argparse.Namespace) -> int:
    import getpass

    from webapp.client.client import Client, load_credentials, save_credentials

    url = args.url or load_credentials().get("url") or "http://127.0.0.1:8000"
    username = args.username or input("Username: ").strip()
    password = getpass.getpass(f"Password for {username}: ")
    client = Client.login(url, username, password, name=f"kiln cli on {os.uname().nodename}")
    path = save_credentials(client.url, client.token or "")
    print(f"Logged in to {client.url} as {username}; token saved in {path}")
    return 0


@_client_command
def _submit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from webapp.client.client import CODE_SUFFIXES, Client

    path = Path(args.file)
    params = dict(_param(item) for item in args.param)
    is_code = path.suffix.lower() in CODE_SUFFIXES
    if not is_code and path.suffix.lower() not in (".yaml", ".yml", ".json"):
        print(f"kiln: error: {path} is neither code (.py, .zip) nor a config (.yaml, .yml, .json)", file=sys.stderr)
        return 2
    if is_code:
        spec, code = (Path(args.config) if args.config else None), path
    else:
        spec, code = path, None
    runs = Client().submit(spec=spec, code=code, project=args.project, gpus=args.gpus, params=params or None)
    for run in runs:
        print(f"Submitted run {run['id']}: {run['project']}#{run['number']} {run['name']} ({run['state']})")
    return 0


@_client_command
def _projects(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    rows = [["ID", "PROJECT", "NAME", "VISIBILITY"]]
    rows += [[str(p["id"]), p["path"], p["name"], p["visibility"]] for p in Client().projects()]
    _print_table(rows, empty="(no projects: `kiln projects create NAME` adds one)")
    return 0


@_client_command
def _project_create(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    project = Client().create_project(args.name, team=args.team, visibility=args.visibility, description=args.description)
    print(f"Created project {project['path']} (id {project['id']}); submit with --project {project['path']}")
    return 0


@_client_command
def _teams(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    rows = [["TEAM", "NAME", "ROLE", "MEMBERS"]]
    rows += [[t["slug"], t["name"], t["role"] or "-", str(t["member_count"])] for t in Client().teams()]
    _print_table(rows, empty="(no teams: `kiln invitations` lists the ones that invited you)")
    return 0


@_client_command
def _team_leave(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    Client().leave_team(args.team)
    print(f"You left {args.team}")
    return 0


@_client_command
def _invitations(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    rows = [["TEAM", "NAME", "ROLE", "INVITED BY", "SENT"]]
    rows += [[i["team"], i["team_name"], i["role"], i["invited_by"] or "-", i["created_at"][:10]] for i in Client().invitations()]
    _print_table(rows, empty="(no invitations)")
    if len(rows) > 1:
        print("Answer with `kiln invitations accept TEAM` or `kiln invitations decline TEAM`.")
    return 0


@_client_command
def _invitation_accept(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    team = Client().accept_invitation(args.team)
    print(f"You joined {team['slug']} as {team['role']}")
    return 0


@_client_command
def _invitation_decline(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    Client().decline_invitation(args.team)
    print(f"Declined the invitation to {args.team}")
    return 0


@_client_command
def _runs(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    runs = Client().runs(args.project, query=args.query, sort=args.sort, limit=args.limit)
    rows = [["ID", "RUN", "NAME", "STATE", "OWNER", "CREATED", "METRICS"]]
    for run in runs:
        metrics = " ".join(f"{key}={_short(summary['last'])}" for key, summary in sorted(run["metrics"].items())[:4])
        rows.append([str(run["id"]), f"{run['project']}#{run['number']}", run["name"], run["state"], run["owner"],
                     run["created_at"][:16].replace("T", " "), metrics])
    _print_table(rows, empty="(no runs)")
    return 0


@_client_command
def _workers(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    rows = [["WORKER", "STATE", "ISOLATED", "RESTARTS", "ISOLATION"]]
    workers = Client().workers()
    rows += [[w["name"], w["state"], "yes" if w["isolated"] else "NO", str(w["restarts"]), w["isolation_summary"]]
             for w in workers]
    _print_table(rows, empty="(no workers registered)")
    for w in workers:
        if w["last_error"]:
            print(f"{w['name']}: last error: {w['last_error'].splitlines()[0] if w['last_error'].strip() else ''}")
    return 0


def _print_table(rows: list[list[str]], *, empty: str) -> None:
    """Left-aligned columns under a header row; `empty` when there is nothing under it."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if len(rows) == 1:
        print(empty)


@_client_command
def _logs(args: argparse.Namespace) -> int:
    import time

    from webapp.client.client import Client

    client, offset = Client(), 0
    while True:
        page = client.logs(args.run, offset)
        for line in page["lines"]:
            print(line["text"], file=sys.stderr if line["stream"] == "stderr" else sys.stdout, flush=True)
        offset = page["next_offset"]
        if page["lines"]:
            continue  # more may be waiting already
        if not args.follow or page["finished"]:
            return 0
        time.sleep(FOLLOW_POLL_SECONDS)


@_client_command
def _cancel(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    run = Client().cancel(args.run)
    print(f"Run {run['id']} is {run['state']}")
    return 0


@_client_command
def _download(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    if args.model:
        print(Client().download_model(args.run, args.model, format=args.format, dest=args.dest))
        return 0
    paths = Client().download(args.run, args.dest)
    for path in paths:
        print(path)
    if not paths:
        print(f"Run {args.run} has no artifacts")
    return 0


def _param(text: str) -> tuple[str, object]:
    """KEY=VALUE with the value read as JSON when it is a number, true/false or a quoted string."""
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SystemExit(f"kiln: error: --param needs KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, dict | list) or value is None:
        value = raw
    return key.strip(), value


def _short(value: float | str | None) -> str:
    """A summary value: "NaN", "Infinity" and "-Infinity" come as strings (the API's rule for them)."""
    return "-" if value is None else value if isinstance(value, str) else f"{value:.4g}"


if __name__ == "__main__":
    sys.exit(main())

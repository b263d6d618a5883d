"""The `kiln` command.

Server commands (run, setup, web, scheduler, worker, compact-metrics) load Django lazily, inside the
command; the client commands that talk to a Kiln server over HTTP never import it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

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
    compact = command("compact-metrics", _compact_metrics, "Delete the raw metric points of old finished runs that "
                      "their charts do not draw (server side: run where the server runs, with its configuration).")
    compact.epilog = ("Charts and summaries stay exactly as they were; range reads, exports and MLflow's get-history "
                      "return only the kept points (each chart bucket's first, min, max and last) afterwards.")
    compact.add_argument("--older-than", required=True, type=_days, metavar="DAYS",
                         help="runs that finished more than DAYS days ago: 90 or 90d")
    compact.add_argument("--project", help="only this project: OWNER/SLUG or its id (default: every project)")
    compact.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    worker = command("worker", _worker, "Run a worker that executes jobs on this machine's GPUs or CPUs.")
    worker.add_argument("--check-isolation", action="store_true",
                        help="run the sandbox's isolation canary, print what it found and exit (1: not isolated)")

    login = command("login", _login, "Sign in to a Kiln server and store an API token for the other commands.")
    login.epilog = ("With --token (for scripts and CI) no password is asked: the token, made on the Tokens page or by "
                    "POST /api/auth/token, is checked with the server, then stored. Setting KILN_TOKEN (and KILN_URL) "
                    "instead needs no login at all: they override what is stored.")
    login.add_argument("--url", help="the server (default: KILN_URL, the stored one, or http://127.0.0.1:8000)")
    who = login.add_mutually_exclusive_group()
    who.add_argument("--username", help="your username (asked when omitted); the password is always asked")
    who.add_argument("--token", help="an API token to store instead of signing in with a password (`-` reads it "
                     "from standard input, keeping it out of the process list)")
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
    admin = command("admin", _no_action, "Admin commands (Kiln admins only): `kiln admin quota ...`.")
    admin.set_defaults(parser=admin)
    quota = admin.add_subparsers(title="areas", metavar="AREA").add_parser(
        "quota", help="quotas per user and team", description="Limits per user and per team on what runs hold at once "
        "(GPUs, CPUs, memory, runs) and on GPU-hours per week. The scheduler enforces them: a run past one waits.")
    quota.set_defaults(handler=_no_action, parser=quota)
    quota_actions = quota.add_subparsers(title="actions", metavar="ACTION")
    quota_set = quota_actions.add_parser(
        "set", help="set limits of a user or team", description="Set the limits given; the others stay as they are. "
        "A value of `none` removes that limit.")
    quota_set.set_defaults(handler=_quota_set)
    _quota_owner_arguments(quota_set)
    quota_set.add_argument("--gpus", type=_limit(int), help="GPUs held at once")
    quota_set.add_argument("--cpus", type=_limit(int), help="CPU slots held at once")
    quota_set.add_argument("--memory-gb", type=_limit(float), help="host memory held at once, in GB")
    quota_set.add_argument("--runs", type=_limit(int), help="runs scheduled or running at once")
    quota_set.add_argument("--gpu-hours-per-week", type=_limit(float), help="GPU-hours used in the last 7 days")
    quota_actions.add_parser("list", help="list every quota", description="List every quota.").set_defaults(
        handler=_quota_list)
    quota_clear = quota_actions.add_parser("clear", help="remove all limits of a user or team",
                                           description="Remove all limits of a user or team.")
    quota_clear.set_defaults(handler=_quota_clear)
    _quota_owner_arguments(quota_clear)
    runs = command("runs", _runs, "List runs as a table.")
    runs.add_argument("--project", help="project id or owner/slug (default: every project you can see)")
    runs.add_argument("--query", default="", help="e.g. 'state IN (running, queued) AND params.lr < 0.01'")
    runs.add_argument("--sort", default="", help="e.g. -metrics.accuracy")
    runs.add_argument("--limit", type=int, default=50, help="at most this many runs (default: 50)")
    logs = command("logs", _logs, "Print a run's log; -f follows it until the run finishes.")
    logs.formatter_class = argparse.RawDescriptionHelpFormatter
    logs.epilog = "exit status with -f (without it: 0 once the log is printed):\n" + EXIT_CODES_HELP
    logs.add_argument("run", type=int, metavar="RUN")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing new lines until the run finishes; the exit status tells how it ended")
    wait = command("wait", _wait, "Wait until a run finishes, print its final state; the exit status tells how it ended.")
    wait.formatter_class = argparse.RawDescriptionHelpFormatter
    wait.epilog = "exit status:\n" + EXIT_CODES_HELP
    wait.add_argument("run", type=int, metavar="RUN")
    wait.add_argument("--timeout", type=_seconds, metavar="S", help="give up after S seconds (default: wait as long as it takes)")
    cancel = command("cancel", _cancel, "Cancel a run.")
    cancel.add_argument("run", type=int, metavar="RUN")
    importer = command("import", _no_action, "Import history from MLflow or TensorBoard into a project.")
    importer.set_defaults(parser=importer)
    sources = importer.add_subparsers(title="sources", metavar="SOURCE")
    from_mlflow = sources.add_parser("mlflow", help="copy runs from a running MLflow tracking server",
                                     description="Copy experiments' runs (params, tags, full metric histories, "
                                     "artifacts) from a running MLflow server; a second import adds nothing.")
    from_mlflow.add_argument("--from", dest="source", required=True, metavar="URI", help="the MLflow tracking URI")
    from_mlflow.add_argument("--experiment", action="append", default=[], metavar="NAME",
                             help="an experiment to copy (repeatable; default: every active one)")
    from_mlflow.add_argument("--project", required=True, help="the Kiln project, OWNER/NAME (created when missing)")
    from_mlflow.set_defaults(handler=_import_mlflow)
    from_tensorboard = sources.add_parser("tensorboard", help="read TensorBoard event files, one run per run folder",
                                          description="Read TensorBoard event files under DIR with tensorboard's "
                                          "reader: one run per folder of event files; a second import adds nothing.")
    from_tensorboard.add_argument("dir", metavar="DIR")
    from_tensorboard.add_argument("--project", required=True, help="the Kiln project, OWNER/NAME (created when missing)")
    from_tensorboard.set_defaults(handler=_import_tensorboard)
    sweeps = command("sweeps", _sweeps, "List a project's sweeps: state, trials, best run and best value.")
    sweeps.add_argument("--project", default=os.environ.get("KILN_PROJECT"), required="KILN_PROJECT" not in os.environ,
                        help="project id or owner/slug (default: KILN_PROJECT)")
    sweep = command("sweep", _sweep, "Show a sweep (`kiln sweep SWEEP`), or pause/resume/stop it "
                    "(`kiln sweep stop SWEEP`); --max-runs N raises its total of trials.")
    sweep.add_argument("words", nargs="+", metavar="[pause|resume|stop] SWEEP")
    sweep.add_argument("--max-runs", type=int, help="raise the sweep's max_runs to N")
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

    config = settings.CONFIG
    bind = args.bind or config.bind
    taken = _bind_problem(bind)
    if taken is not None:  # before anything starts: gunicorn would retry, crash and be restarted for ~45 s
        print(f"kiln run: can't serve on {bind}: {taken}. Stop what holds it, or choose another address with "
              "--bind or KILN_BIND.", file=sys.stderr)
        return 1
    _bootstrap()
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


def _bind_problem(bind: str) -> str | None:
    """Why the web server could not listen on `bind` (`host:port`, `[v6]:port`), or None (or not a TCP address)."""
    import errno
    import socket

    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or host.startswith("unix"):
        return None
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 -- gunicorn's meaning of ":8000"
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        return f"the address does not resolve ({exc})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            return "the address is already in use (is another Kiln running?)" if exc.errno == errno.EADDRINUSE else str(exc)
    return None


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


def _compact_metrics(args: argparse.Namespace) -> int:
    _django()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.http import Http404
    from django.utils import timezone

    from webapp.experiments.retention import metrics_compact
    from webapp.projects.selectors import project_by_ref

    project = None
    if args.project is not None:
        operator = get_user_model()(is_superuser=True)  # whoever runs this on the server sees every project
        try:
            project = project_by_ref(operator, args.project)
        except Http404:
            print(f"kiln compact-metrics: no project {args.project!r} (give OWNER/SLUG or the project's id)", file=sys.stderr)
            return 2
    finished_before = timezone.now() - timedelta(days=args.older_than)
    print("\n".join(metrics_compact(finished_before=finished_before, project=project, dry_run=args.dry_run).lines()))
    return 0


MAX_AGE_DAYS = 100_000  # ~270 years: every real age fits, and now minus it is still a datetime


def _days(text: str) -> float:
    """An argparse type: an age in days, 0 or more, written 90 or 90d."""
    number = text.strip().lower().removesuffix("d")
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days such as 90 or 90d, got {text!r}") from None
    if not 0 <= value <= MAX_AGE_DAYS:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_AGE_DAYS:,} days, got {text}")
    return value


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
FROM_STDIN = "-"  # `kiln login --token -`

# How `kiln logs -f` and `kiln wait` end: the run's final state as an exit status (1 and 2 keep their usual
# meanings: an error talking to the server, bad arguments). A run whose worker was lost on every attempt ends
# failed, so it gives EXIT_FAILED; a lost run that is re-queued is still waited for.
EXIT_FAILED = 3
EXIT_CANCELLED = 4
EXIT_TIMEOUT = 5
# a sweep trial stopped early by its pruner ended as intended: a good outcome
EXIT_BY_STATE = {"succeeded": 0, "stopped_early": 0, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
EXIT_CODES_HELP = (
    "  0  the run succeeded (or, a sweep trial, was stopped early by its pruner)\n"
    "  1  an error: the server could not be reached, refused the token, or has no such run\n"
    "  2  bad arguments\n"
    f"  {EXIT_FAILED}  the run failed (a run whose worker was lost on every attempt fails too)\n"
    f"  {EXIT_CANCELLED}  the run was cancelled\n"
    f"  {EXIT_TIMEOUT}  --timeout passed before the run finished (kiln wait)"
)
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
    if args.token is not None:
        return _login_with_token(url, sys.stdin.readline() if args.token == FROM_STDIN else args.token)
    username = args.username or input("Username: ").strip()
    password = getpass.getpass(f"Password for {username}: ")
    client = Client.login(url, username, password, name=f"kiln cli on {os.uname().nodename}")
    path = save_credentials(client.url, client.token or "")
    print(f"Logged in to {client.url} as {username}; token saved in {path}")
    _warn_env_token()
    return 0


def _login_with_token(url: str, token: str) -> int:
    """Store `token` once the server has said whose it is; a refused one stores nothing."""
    from webapp.client.client import Client, KilnError, save_credentials

    token = token.strip()
    if not token:
        print("kiln: error: --token is empty", file=sys.stderr)
        return 2
    client = Client(url, token)
    try:
        me = client.me()
    except KilnError as exc:
        if exc.status != 401:
            raise
        print(f"kiln: error: {client.url} refused the token ({exc.message}); nothing was stored", file=sys.stderr)
        return 1
    path = save_credentials(client.url, token)
    print(f"Logged in to {client.url} as {me['username']}; token saved in {path}")
    _warn_env_token()
    return 0


def _warn_env_token() -> None:
    if os.environ.get("KILN_TOKEN"):
        print("kiln: note: KILN_TOKEN is set, and overrides the stored token until it is unset", file=sys.stderr)


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
    submitted = Client().submission(spec=spec, code=code, project=args.project, gpus=args.gpus, params=params or None)
    for run in submitted["runs"]:
        print(f"Submitted run {run['id']}: {run['project']}#{run['number']} {run['name']} ({run['state']})")
    sweep = submitted.get("sweep")
    if sweep:
        later = "" if submitted["runs"] else "; the scheduler starts its trials as slots free"
        print(f"Submitted sweep {sweep['id']} {sweep['name']}{later} (follow it with `kiln sweep {sweep['id']}`)")
    return 0


@_client_command
def _projects(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    rows = [["ID", "PROJECT", "NAME", "VISIBILITY"]]
    rows += [[str(p["id"]), p["path"], p["name"], p["visibility"]] for p in Client().projects()]
    _print_table(rows, empty="(no projects: `kiln projects create NAME` adds one)")
    return 0


@_client_command
def _sweeps(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    rows = [["ID", "NAME", "METHOD", "STATE", "TRIALS", "BEST RUN", "BEST"]]
    rows += [_sweep_row(sweep) for sweep in Client().sweeps(args.project)]
    _print_table(rows, empty="(no sweeps: submit a spec with a sweep: block)")
    return 0


SWEEP_ACTIONS = ("pause", "resume", "stop")


@_client_command
def _sweep(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    words = args.words
    action = words[0] if len(words) == 2 else None
    if len(words) > 2 or (action is not None and action not in SWEEP_ACTIONS) or not words[-1].isdigit():
        print("kiln sweep: give SWEEP (an id), or pause|resume|stop SWEEP", file=sys.stderr)
        return 2
    client, sweep_id = Client(), int(words[-1])
    sweep = client.sweep_control(sweep_id, action) if action else client.sweep(sweep_id)
    if args.max_runs is not None:
        sweep = client.sweep_control(sweep_id, "max_runs", max_runs=args.max_runs)
    metric = sweep["metric"]
    print(f"Sweep {sweep['id']} {sweep['name']}: {sweep['method']}, {sweep['state']}")
    if metric:
        print(f"Objective: {metric['goal']} {metric['name']}")
    counts = ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in sorted(sweep["by_state"].items()))
    print(f"Trials: {sweep['trials']}{' of ' + str(sweep['max_runs']) if sweep['controlled'] else ''}"
          f"{' (' + counts + ')' if counts else ''}")
    best = sweep["best_run"]
    print(f"Best: run #{best['number']} {best['name']} ({sweep['best_value']:.6g})" if best else "Best: none yet")
    return 0


def _sweep_row(sweep: dict) -> list[str]:
    best = sweep["best_run"]
    return [str(sweep["id"]), sweep["name"], sweep["method"], sweep["state"], str(sweep["trials"]),
            f"#{best['number']}" if best else "-", f"{sweep['best_value']:.6g}" if best else "-"]


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


QUOTA_LIMITS = ("gpus", "cpus", "memory_gb", "runs", "gpu_hours_per_week")


def _no_action(args: argparse.Namespace) -> int:
    """`kiln admin` or `kiln admin quota` without an action: the help, exit status 2."""
    parser = getattr(args, "parser", None)
    print((parser.format_help() if parser else "usage: kiln admin quota {set,list,clear} ...").rstrip(), file=sys.stderr)
    return 2


def _quota_owner_arguments(parser: argparse.ArgumentParser) -> None:
    owner = parser.add_mutually_exclusive_group(required=True)
    owner.add_argument("--user", help="a username")
    owner.add_argument("--team", help="a team's slug")


def _limit(kind: type) -> Callable[[str], object]:
    """An argparse type: a number >= 0, or `none` (the limit is removed)."""

    def parse(text: str) -> object:
        if text.strip().lower() in ("none", "unlimited"):
            return "none"
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if kind is int else ''}number or none, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
        return value

    parse.__name__ = "limit"
    return parse


def _quota_owner(args: argparse.Namespace) -> tuple[str, str]:
    return ("user", args.user) if args.user is not None else ("team", args.team)


@_client_command
def _quota_set(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    given = {field: getattr(args, field) for field in QUOTA_LIMITS if getattr(args, field) is not None}
    if not given:
        print("kiln: error: give at least one limit (--gpus, --cpus, --memory-gb, --runs, --gpu-hours-per-week)",
              file=sys.stderr)
        return 2
    kind, name = _quota_owner(args)
    clear = tuple(field for field, value in given.items() if value == "none")
    values = {field: value for field, value in given.items() if value != "none"}
    quota = Client().set_quota(kind, name, clear=clear, **values)
    print(f"Quota of {kind} {quota['name']}: {_quota_summary(quota)}")
    return 0


@_client_command
def _quota_list(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    rows = [["FOR", "NAME", "GPUS", "CPUS", "MEMORY GB", "RUNS", "GPU-HOURS/WEEK"]]
    rows += [[q["kind"], q["name"], *(_limit_text(q[field]) for field in QUOTA_LIMITS)] for q in Client().quotas()]
    _print_table(rows, empty="(no quotas: `kiln admin quota set --user NAME --gpus 4` sets one)")
    return 0


@_client_command
def _quota_clear(args: argparse.Namespace) -> int:
    from webapp.client.client import Client

    kind, name = _quota_owner(args)
    Client().clear_quota(kind, name)
    print(f"Quota of {kind} {name} removed: no limits")
    return 0


def _limit_text(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _quota_summary(quota: dict) -> str:
    parts = [f"{field.replace('_', '-')} {quota[field]:g}" for field in QUOTA_LIMITS if quota.get(field) is not None]
    return ", ".join(parts) or "no limits"


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
        if not args.follow:
            return 0
        if page["finished"]:
            return _ended(client.get(args.run), sys.stderr, quiet_success=True)
        time.sleep(FOLLOW_POLL_SECONDS)


@_client_command
def _wait(args: argparse.Namespace) -> int:
    from webapp.client.client import Client, KilnError

    client = Client()
    try:
        run = client.wait(args.run, timeout=args.timeout, poll=FOLLOW_POLL_SECONDS)
    except KilnError as exc:
        if exc.code != "timeout":
            raise
        print(f"kiln: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    return _ended(run, sys.stdout, quiet_success=False)


def _ended(run: dict, stream: TextIO, *, quiet_success: bool) -> int:
    """Say how a finished run ended (with its failure reason) on `stream`; its exit status."""
    state = run["state"]
    if state != "succeeded" or not quiet_success:
        reason = f": {run['failure_reason']}" if state == "failed" and run.get("failure_reason") else ""
        print(f"Run {run['id']} {state}{reason}", file=stream, flush=True)
    return EXIT_BY_STATE[state]


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


@_client_command
def _import_mlflow(args: argparse.Namespace) -> int:
    from webapp.client.client import Client
    from webapp.client.importers import import_mlflow

    report = import_mlflow(Client(), source_uri=args.source, project=args.project, experiments=args.experiment or None)
    print("\n".join(report.lines()))
    return 0


@_client_command
def _import_tensorboard(args: argparse.Namespace) -> int:
    from webapp.client.client import Client
    from webapp.client.importers import import_tensorboard

    print("\n".join(import_tensorboard(Client(), logdir=args.dir, project=args.project).lines()))
    return 0


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, 0 or more, got {text}")
    return value


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

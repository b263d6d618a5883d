"""Kiln's Python client: a thin layer over the REST API, on the standard library only (no Django).

    >>> from webapp.client.client import Client
    >>> kiln = Client("http://127.0.0.1:8000", "kiln_...")            # or Client() after `kiln login`
    >>> runs = kiln.submit(spec={"recipe": {"model": "mlp"}}, project="alice/mnist")
    >>> kiln.wait(runs[0], timeout=600)["state"]
    'succeeded'
    >>> [r["name"] for r in kiln.runs("alice/mnist", query="metrics.loss < 0.1")]

Every failure raises KilnError with the server's `code` and `message` (and `fields` for bad input).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

RunRef = int | str | dict
CODE_SUFFIXES = (".py", ".zip")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "stopped_early"})
_CHUNK = 1024 * 1024


class KilnError(Exception):
    """An API error: `status` (0 when the server could not be reached), `code`, `message`, `fields`."""

    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None):
        self.status, self.code, self.message = status, code, message
        self.fields = fields or []
        detail = "; ".join(f"{f.get('field')}: {f.get('message')}" for f in self.fields if f.get("field"))
        super().__init__(f"{message} ({detail})" if detail and detail not in message else message)


_NON_FINITE = ("NaN", "Infinity", "-Infinity")


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kiln" / "credentials.json"


def load_credentials() -> dict[str, str]:
    """Stored url and token (from `kiln login`), overridden by KILN_URL and KILN_TOKEN."""
    stored: dict[str, str] = {}
    path = credentials_path()
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            stored = {}
    for key, env in (("url", "KILN_URL"), ("token", "KILN_TOKEN")):
        if os.environ.get(env):
            stored[key] = os.environ[env]
    return stored


def save_credentials(url: str, token: str) -> Path:
    """Write url and token to the credentials file, readable by the user alone (0600)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token}, handle)
    os.replace(tmp, path)
    return path


class Client:
    """Talks to one Kiln server with one API token."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 60.0):
        stored = load_credentials() if url is None or token is None else {}
        self.url = (url or stored.get("url") or "http://127.0.0.1:8000").rstrip("/")
        self.token = token or stored.get("token")
        self.timeout = timeout

    @classmethod
    def login(cls, url: str, username: str, password: str, *, name: str = "kiln client") -> Client:
        """A client holding a new token for `username`."""
        anonymous = cls(url, "")
        body = anonymous._call("POST", "/api/auth/token", json_body={"username": username, "password": password, "name": name})
        return cls(url, body["token"])

    def me(self) -> dict:
        """Who the token belongs to: {"id", "username", "is_superuser"} (KilnError 401 for a bad token)."""
        return self._call("GET", "/api/auth/me")

    # Projects -----------------------------------------------------------------------------------

    def projects(self) -> list[dict]:
        return list(self._pages("/api/projects", {}))

    def project(self, project: str | int) -> dict:
        return self._call("GET", f"/api/projects/{_project_path(project)}")

    def create_project(
        self, name: str, *, team: str | None = None, visibility: str = "private", description: str = ""
    ) -> dict:
        """A personal project (or `team`'s, if you edit in it); its `path` (owner/slug) names it in other calls."""
        body = {"name": name, "team": team, "visibility": visibility, "description": description}
        return self._call("POST", "/api/projects", json_body=body)

    # Teams and invitations ----------------------------------------------------------------------

    def teams(self) -> list[dict]:
        """The teams you belong to, with your role."""
        return self._call("GET", "/api/teams")

    def invite(self, team: str, username: str, *, role: str = "viewer") -> dict:
        """Invite `username` to `team` (team admins); they join when they accept."""
        return self._call("POST", f"/api/teams/{_slug(team)}/invitations", json_body={"username": username, "role": role})

    def invitations(self) -> list[dict]:
        """Your pending team invitations."""
        return self._call("GET", "/api/invitations")

    def accept_invitation(self, team: str) -> dict:
        """Join `team` with the invited role; returns the team as `teams()` lists it."""
        return self._call("POST", f"/api/invitations/{_slug(team)}/accept")

    def decline_invitation(self, team: str) -> None:
        self._call("POST", f"/api/invitations/{_slug(team)}/decline")

    def leave_team(self, team: str) -> None:
        """Leave `team`; refused to its last admin."""
        self._call("POST", f"/api/teams/{_slug(team)}/leave")

    # Workers ------------------------------------------------------------------------------------

    def workers(self) -> list[dict]:
        """Every worker: state, whether its sandbox isolates code runs (and what its canary found), restarts."""
        return self._call("GET", "/api/workers")

    # Quotas (admins) ----------------------------------------------------------------------------

    def quotas(self) -> list[dict]:
        """Every quota admins set: [{"kind": "user"|"team", "name", "gpus", "cpus", "memory_gb", "runs", ...}]."""
        return self._call("GET", "/api/admin/quotas")

    def quota(self, kind: str, name: str) -> dict:
        """One user's or team's quota (KilnError 404 when none is set)."""
        return self._call("GET", f"/api/admin/quotas/{_slug(kind)}/{_slug(name)}")

    def set_quota(
        self, kind: str, name: str, *, gpus: int | None = None, cpus: int | None = None,
        memory_gb: float | None = None, runs: int | None = None, gpu_hours_per_week: float | None = None,
        clear: tuple[str, ...] = (),
    ) -> dict:
        """Set the limits given for a user or team (kind "user" or "team"); the others stay as they are.

        `clear` names limits to remove, e.g. ("gpus",). Returns the quota as it now stands.
        """
        given = {"gpus": gpus, "cpus": cpus, "memory_gb": memory_gb, "runs": runs,
                 "gpu_hours_per_week": gpu_hours_per_week}
        path = f"/api/admin/quotas/{_slug(kind)}/{_slug(name)}"
        if not clear:
            return self._call("PATCH", path, json_body=given)
        try:
            current = self.quota(kind, name)
        except KilnError as exc:
            if exc.status != 404 or exc.code != "not_found":
                raise
            current = {}
        limits = {field: current.get(field) for field in given}
        limits.update({field: value for field, value in given.items() if value is not None})
        limits.update(dict.fromkeys(clear))
        return self._call("PUT", path, json_body=limits)  # a limit left out (None) is no limit

    def clear_quota(self, kind: str, name: str) -> None:
        """Remove every limit of a user or team."""
        self._call("DELETE", f"/api/admin/quotas/{_slug(kind)}/{_slug(name)}")

    # Runs ---------------------------------------------------------------------------------------

    def submit(
        self, spec: dict | str | Path | None = None, code: str | Path | None = None, *, project: str | int,
        gpus: int | None = None, params: dict[str, Any] | None = None,
    ) -> list[dict]:
        """Submit a run (or a sweep): `spec` is a dict or a YAML/JSON file, `code` a .py file or .zip project.

        Returns the new runs (a Bayesian, CMA-ES or early-stopping sweep's trials come later, from the
        scheduler: `submission` also returns the sweep).
        """
        return self.submission(spec, code, project=project, gpus=gpus, params=params)["runs"]

    def submission(
        self, spec: dict | str | Path | None = None, code: str | Path | None = None, *, project: str | int,
        gpus: int | None = None, params: dict[str, Any] | None = None,
    ) -> dict:
        """`submit`'s whole answer: {"runs": [...], "sweep": {"id", "name"} or None}."""
        if isinstance(spec, dict) and code is None:
            body = {"project": str(project), "spec": spec, "gpus": gpus, "params": params}
            return self._call("POST", "/api/runs", json_body=body)
        if isinstance(spec, dict):
            spec_text = json.dumps(spec)
        else:
            spec_text = Path(spec).read_text() if spec is not None else ""
        form: dict[str, str] = {"project": str(project), "spec": spec_text}
        if gpus is not None:
            form["gpus"] = str(gpus)
        if params:
            form["params"] = json.dumps(params)
        files = {"code": Path(code)} if code is not None else {}
        return self._call("POST", "/api/runs/upload", form=form, files=files)

    def runs(self, project: str | int | None = None, *, query: str = "", sort: str = "", limit: int | None = None) -> list[dict]:
        """Runs matching `query` (e.g. "state = running AND params.lr < 0.01"), newest first unless `sort`."""
        params = {"query": query, "sort": sort}
        if project is not None:
            params["project"] = str(project)
        found = []
        for run in self._pages("/api/runs", params):
            found.append(_with_float_metrics(run))
            if limit is not None and len(found) >= limit:
                break
        return found

    def get(self, run: RunRef) -> dict:
        return _with_float_metrics(self._call("GET", f"/api/runs/{_run_id(run)}"))

    def wait(self, run: RunRef, timeout: float | None = None, *, poll: float = 2.0) -> dict:
        """Poll until the run finishes; KilnError(code="timeout") after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.get(run)
            if current["state"] in FINAL_STATES:
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise KilnError(0, "timeout", f"run {current['id']} is still {current['state']} after {timeout} s")
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    def cancel(self, run: RunRef) -> dict:
        return self._call("POST", f"/api/runs/{_run_id(run)}/cancel")["run"]

    def rerun(self, run: RunRef) -> dict:
        return self._call("POST", f"/api/runs/{_run_id(run)}/rerun")

    def sweeps(self, project: str | int) -> list[dict]:
        """A project's sweeps: state, trials by state, best run and best value of the objective."""
        return self._call("GET", "/api/sweeps", params={"project": str(project)})

    def sweep(self, sweep: int) -> dict:
        return self._call("GET", f"/api/sweeps/{int(sweep)}")

    def sweep_control(self, sweep: int, action: str, *, max_runs: int | None = None) -> dict:
        """pause | resume | stop a sweep, or `max_runs` to raise its total of trials."""
        body: dict[str, Any] = {"action": action}
        if max_runs is not None:
            body["max_runs"] = max_runs
        return self._call("POST", f"/api/sweeps/{int(sweep)}/control", json_body=body)

    def delete(self, run: RunRef) -> None:
        self._call("DELETE", f"/api/runs/{_run_id(run)}")

    # Results ------------------------------------------------------------------------------------

    def metrics(
        self, run: RunRef, key: str | None = None, *, max_points: int = 1000,
        step_min: int | None = None, step_max: int | None = None,
    ) -> Any:
        """Without `key`: every key with its summary. With `key`: {"steps", "values", "wall_times", ...}."""
        if key is None:
            return [_with_float_last(summary) for summary in self._call("GET", f"/api/runs/{_run_id(run)}/metrics")]
        params: dict[str, Any] = {"key": key, "max_points": max_points}
        if step_min is not None:
            params["step_min"] = step_min
        if step_max is not None:
            params["step_max"] = step_max
        history = self._call("GET", f"/api/runs/{_run_id(run)}/metrics/history", params=params)
        history["values"] = [_metric_float(value) for value in history["values"]]
        return history

    def log_metrics(self, run: RunRef, points: list[dict]) -> dict:
        """Log [{"key", "step", "value", "wall_time"?}, ...] (at most 10,000 per call)."""
        return self._call("POST", f"/api/runs/{_run_id(run)}/metrics", json_body={"points": points})

    def log_series(self, run: RunRef, series: list[dict]) -> dict:
        """Log columns: [{"key", "steps": [...], "values": [...], "wall_times": [...]?}, ...] (10,000 points in all per call).

        Smaller and cheaper for the server than `log_metrics`' rows; the same points are stored.
        """
        return self._call("POST", f"/api/runs/{_run_id(run)}/metrics", json_body={"series": series})

    def metric_logger(self, run: RunRef, **options: Any) -> Any:
        """A background batcher for `run`: `.log({"loss": 0.1}, step=3)` only queues; a thread sends.

        Nothing is lost while the process runs (retried while the server is unreachable); `.close()`
        (or the process's exit) sends what is queued. Options: batch_points, flush_seconds, max_points,
        block_seconds, close_seconds (see `engine.track.remote.MetricBatcher`).
        """
        # NOTE: imported here: the one batcher, shared with engine.track, whose package imports numpy
        from engine.track.remote import MetricBatcher

        return MetricBatcher(self.url, self.token, _run_id(run), **options)

    def logs(self, run: RunRef, offset: int = 0, *, limit: int = 1000) -> dict:
        """{"lines": [{"seq", "stream", "text"}], "next_offset", "state", "finished"}."""
        return self._call("GET", f"/api/runs/{_run_id(run)}/logs", params={"offset": offset, "limit": limit})

    def artifacts(self, run: RunRef) -> list[dict]:
        return self._call("GET", f"/api/runs/{_run_id(run)}/artifacts")

    def models(self, run: RunRef) -> list[dict]:
        """[{"name", "signature": {"inputs", "outputs"}, "files": [{"format", "artifact_id", "name", ...}]}]."""
        return self._call("GET", f"/api/runs/{_run_id(run)}/models")

    def download_model(self, run: RunRef, name: str = "model", *, format: str = "onnx", dest: str | Path = ".") -> Path:
        """Download one logged model's file ("onnx" or "engine") into `dest`; returns its path."""
        models = self.models(run)
        model = next((m for m in models if m["name"] == name), None)
        if model is None:
            have = ", ".join(m["name"] for m in models) or "none"
            raise KilnError(404, "not_found", f"run {_run_id(run)} has no model {name!r} (models: {have})")
        file = next((f for f in model["files"] if f["format"] == format), None)
        if file is None:
            have = ", ".join(f["format"] for f in model["files"])
            raise KilnError(404, "not_found", f"model {name!r} has no {format} file (formats: {have})")
        return self._fetch(run, {"id": file["artifact_id"], "name": Path(file["name"]).name}, Path(dest).resolve())

    def upload(self, run: RunRef, path: str | Path, *, name: str | None = None, kind: str = "artifact") -> dict:
        form = {"name": name or Path(path).name, "kind": kind}
        return self._call("POST", f"/api/runs/{_run_id(run)}/artifacts", form=form, files={"file": Path(path)})

    def download(self, run: RunRef, dest: str | Path = ".") -> list[Path]:
        """Download every artifact of the run under `dest`, keeping their relative names; returns the paths."""
        root = Path(dest).resolve()
        return [self._fetch(run, artifact, root) for artifact in self.artifacts(run)]

    def _fetch(self, run: RunRef, artifact: dict, root: Path) -> Path:
        target = (root / artifact["name"]).resolve()
        if root not in target.parents:
            raise KilnError(0, "unsafe_name", f"artifact name {artifact['name']!r} leaves {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        url = f"/api/runs/{_run_id(run)}/artifacts/{artifact['id']}/download"
        with self._open("GET", url) as response, open(target, "wb") as sink:
            while chunk := response.read(_CHUNK):
                sink.write(chunk)
        return target

    # HTTP ---------------------------------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        offset = 0
        while True:
            page = self._call("GET", path, params={**params, "limit": 200, "offset": offset})
            yield from page["items"]
            if page["next_offset"] is None:
                return
            offset = page["next_offset"]

    def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
        form: dict[str, str] | None = None, files: dict[str, Path] | None = None,
    ) -> Any:
        with self._open(method, path, params=params, json_body=json_body, form=form, files=files) as response:
            data = response.read()
        return json.loads(data) if data else None

    def _open(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None,
        form: dict[str, str] | None = None, files: dict[str, Path] | None = None,
    ) -> Any:
        url = self.url + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None and v != ""})
        headers = {"Accept": "application/json", "User-Agent": "kiln-client"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = None
        if json_body is not None:
            body = json.dumps({k: v for k, v in json_body.items() if v is not None}).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None or files:
            body, headers["Content-Type"] = _multipart(form or {}, files or {})
        if not url.startswith(("http://", "https://")):
            raise KilnError(0, "bad_url", f"the server URL must start with http:// or https://, got {self.url!r}")
        request = Request(url, data=body, headers=headers, method=method)  # noqa: S310 -- scheme checked above
        try:
            return urlopen(request, timeout=self.timeout)  # noqa: S310 -- scheme checked above
        except HTTPError as exc:
            raise _error_from(exc) from None
        except URLError as exc:
            raise KilnError(0, "unreachable", f"cannot reach {self.url}: {exc.reason}") from None


def _metric_float(value: float | str | None) -> float | None:
    """A metric value as the API carries it (a number, or "NaN", "Infinity", "-Infinity") as a Python float."""
    return float(value) if isinstance(value, str) and value in _NON_FINITE else value  # type: ignore[return-value]


def _with_float_last(summary: dict) -> dict:
    return {**summary, "last": _metric_float(summary.get("last"))} if "last" in summary else summary


def _with_float_metrics(run: dict) -> dict:
    """A run whose metric summaries' `last` values are floats (math.nan / ±math.inf where the API sent words)."""
    if isinstance(run.get("metrics"), dict):
        run["metrics"] = {key: _with_float_last(summary) for key, summary in run["metrics"].items()}
    return run


def _error_from(exc: HTTPError) -> KilnError:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return KilnError(exc.code, str(body.get("code") or "http_error"), str(body.get("message") or exc.reason), body.get("fields"))


def _multipart(form: dict[str, str], files: dict[str, Path]) -> tuple[bytes, str]:
    boundary = f"kiln-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in form.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        parts.append(value.encode() + b"\r\n")
    for name, path in files.items():
        filename = path.name.replace('"', "_")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        parts.append(path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _run_id(run: RunRef) -> int:
    if isinstance(run, dict):
        return int(run["id"])
    return int(run)


def _project_path(project: str | int) -> str:
    return quote(str(project).strip("/"), safe="/")


def _slug(team: str) -> str:
    return quote(team.strip().strip("/"), safe="")

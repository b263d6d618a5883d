"""Every code sample a user is shown runs, so none can drift from the code again.

What is run:
- the submit page's code placeholder, taken from the rendered page, as a whole script;
- every ```python block of README.md and examples/README.md, in a fresh namespace inside a
  temporary folder (so engine.track writes its local ./kiln-runs/ there). A block that is a
  fragment of a larger program (it uses `model` defined elsewhere) gets the smallest setup that
  gives it those names, from SETUP below; a new fragment with no setup fails with a NameError,
  which says what to add;
- the `track.<name>(...)` calls the pages quote (help texts, empty states), evaluated against
  engine.track with `loss` and `step` given;
- client samples (they import webapp.client) against a real server (live_server), as a fresh
  user with no projects: the sample must create what it uses. No worker runs in tests, so a
  thread plays the worker's part on the submitted run (it starts, logs `loss`, succeeds);
  everything the sample itself calls goes through HTTP to the real API.
examples/*.py are run end to end, to their accuracy bars, by tests/compat/test_examples.py.
"""

from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from webapp.accounts.tokens import token_create

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = (REPO / "README.md", REPO / "examples" / "README.md")
TEMPLATES = REPO / "webapp" / "templates"
TRACK_ENV = ("KILN_RUN_DIR", "KILN_EVENTS", "KILN_CONFIG", "KILN_RESUME", "RANK", "WORLD_SIZE", "LOCAL_RANK")
CLIENT_URL, CLIENT_TOKEN = "http://127.0.0.1:8000", "kiln_…"  # what client samples write; replaced by the test server's


@dataclass(frozen=True)
class Sample:
    where: str  # "README.md:104", the line of the opening fence
    code: str


@dataclass(frozen=True)
class Setup:
    """What a fragment assumes: `before` defines its free names, `after` checks what it left (may be empty)."""

    before: str
    after: str = ""


# Keyed by code that appears in exactly one sample (the first test checks it).
SETUP = {
    "checkpoint = track.resume()": Setup(
        before="import engine as torch\nimport engine.nn as nn\nfrom engine import track\nmodel = nn.Linear(8, 2)\n",
        after="assert checkpoint is None and start == 0  # a first attempt: nothing to resume\n",
    ),
    "traced = torch.jit.trace(model, x)": Setup(
        before="import engine as torch\n"
               "model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))\n",
        after="assert torch.jit.load('model.pt')(torch.randn(3, 16)).shape == (3, 10)\n"
              "import os\nassert os.path.getsize('model.onnx') > 0 and os.path.getsize('q.safetensors') > 0\n",
    ),
    "def train_step(x, y):": Setup(
        before="import engine as torch\nimport engine.nn.functional as F\n"
               "model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))\n"
               "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n",
        after="x, y = torch.randn(8, 16), torch.randint(0, 10, (8,))\n"
              "first = train_step(x, y).item()\nfor _ in range(5):\n    last = train_step(x, y).item()\n"
              "assert last < first, (first, last)\n",
    ),
}


def markdown_samples(path: Path) -> list[Sample]:
    """The ```python blocks of a Markdown file."""
    samples, lines, start = [], path.read_text().splitlines(), None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if start is None and stripped.startswith("```") and stripped[3:].strip().lower() in ("python", "py"):
            start, body = number, []
        elif start is not None and stripped == "```":
            samples.append(Sample(f"{path.relative_to(REPO)}:{start}", "\n".join(body) + "\n"))
            start = None
        elif start is not None:
            body.append(line)
    assert start is None, f"{path.name}:{start}: a ```python block is never closed"
    return samples


def _is_client(sample: Sample) -> bool:
    return "webapp.client" in sample.code


DOC_SAMPLES = [sample for path in DOCUMENTS for sample in markdown_samples(path)]
ENGINE_SAMPLES = [sample for sample in DOC_SAMPLES if not _is_client(sample)]
CLIENT_SAMPLES = [sample for sample in DOC_SAMPLES if _is_client(sample)]


def _setup_for(sample: Sample) -> Setup:
    found = [setup for key, setup in SETUP.items() if key in sample.code]
    assert len(found) <= 1, f"{sample.where}: more than one SETUP entry matches"
    return found[0] if found else Setup(before="")


@pytest.fixture
def sample_folder(tmp_path, monkeypatch):
    """A fresh folder as the working directory and a fresh engine.track session that writes its local run there."""
    from engine import track

    for name in TRACK_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(track, "_session", None)
    yield tmp_path
    if track._session is not None:
        track._session.close()


def _run(code: str, where: str) -> dict:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 -- the repository's own documentation samples
    return namespace


def _assert_logged(folder: Path, code: str, where: str) -> None:
    """A sample that logs or checkpoints through engine.track left them in the local run folder."""
    if "track.log(" in code:
        logged = [path for path in folder.glob("kiln-runs/*/metrics.jsonl") if path.read_text().strip()]
        assert logged, f"{where}: the sample calls track.log but no metrics reached ./kiln-runs/"
    if "track.save_checkpoint(" in code:
        assert list(folder.glob("kiln-runs/*/checkpoints/*.safetensors")), f"{where}: no checkpoint was written"


def test_the_documents_have_samples_and_every_setup_belongs_to_one_sample():
    assert len(ENGINE_SAMPLES) >= 4 and CLIENT_SAMPLES, "the README's samples were not found"
    for key in SETUP:
        owners = [sample.where for sample in DOC_SAMPLES if key in sample.code]
        assert len(owners) == 1, f"SETUP[{key!r}] should match one sample, matches {owners}: update tests/test_samples.py"


@pytest.mark.parametrize("sample", ENGINE_SAMPLES, ids=[sample.where for sample in ENGINE_SAMPLES])
def test_documented_sample_runs(sample, sample_folder):
    setup = _setup_for(sample)
    namespace = _run(setup.before, f"{sample.where} (setup)")
    exec(compile(sample.code, sample.where, "exec"), namespace)  # noqa: S102 -- as above
    if setup.after:
        exec(compile(setup.after, f"{sample.where} (check)", "exec"), namespace)  # noqa: S102 -- as above
    _assert_logged(sample_folder, sample.code, sample.where)


# The submit page's placeholder ---------------------------------------------------------------------------

class _Placeholders(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "textarea" and values.get("placeholder") is not None:
            self.found[values.get("name") or ""] = values["placeholder"] or ""


@pytest.fixture
def submit_page_placeholders(db, client):
    from tests.webapp.factories import ProjectFactory, UserFactory

    user = UserFactory(username="ada")
    project = ProjectFactory(owner_user=user, slug="first", name="First")
    client.force_login(user)
    response = client.get(reverse("run_submit", args=[project.id]))
    assert response.status_code == 200
    parser = _Placeholders()
    parser.feed(response.content.decode())
    return parser.found


def test_the_code_editors_placeholder_is_a_script_that_runs(submit_page_placeholders, sample_folder):
    code = submit_page_placeholders["code"]
    assert "track.log(" in code and "…" not in code, "the placeholder should be a whole script"
    _run(code, "the submit page's code placeholder")
    _assert_logged(sample_folder, code, "the submit page's code placeholder")


# track.<name>(...) quoted in the pages ------------------------------------------------------------------

def _quoted_calls(text: str) -> list[str]:
    """Each `track.name(...)` in `text`, parentheses balanced; `track.name` alone as well."""
    calls = []
    for match in re.finditer(r"\btrack\.([A-Za-z_]\w*)", text):
        end = match.end()
        if end < len(text) and text[end] == "(":
            depth = 0
            for index in range(end, len(text)):
                depth += {"(": 1, ")": -1}.get(text[index], 0)
                if depth == 0:
                    end = index + 1
                    break
        calls.append(text[match.start():end])
    return calls


def test_track_calls_quoted_in_the_pages_work(sample_folder):
    from engine import track

    quoted = {(path.relative_to(REPO).as_posix(), call) for path in TEMPLATES.rglob("*.html")
              for call in _quoted_calls(html.unescape(path.read_text()))}
    assert any(call.startswith("track.log(") for _, call in quoted)
    for where, call in sorted(quoted):
        name = call[len("track."):].split("(")[0]
        assert hasattr(track, name), f"{where}: `{call}`: engine.track has no {name!r}"
        if "(" in call:
            assert callable(getattr(track, name)), f"{where}: `{call}`: engine.track.{name} is not callable"
            eval(compile(call, where, "eval"), {"track": track, "loss": 0.5, "step": 0})  # noqa: S307 -- our templates


# Client samples, against a real server ------------------------------------------------------------------

def _play_the_worker(stop: threading.Event) -> None:
    """Start the first run submitted, log a falling loss and let it succeed (what a worker would do)."""
    from webapp.experiments.lifecycle import run_transition
    from webapp.experiments.models import Run, RunState
    from webapp.experiments.results import MetricPoint, metrics_log

    try:
        while not stop.is_set():
            run = Run.objects.filter(state=RunState.QUEUED).order_by("id").first()
            if run is None:
                time.sleep(0.05)
                continue
            run_transition(run_id=run.id, from_states=(RunState.QUEUED,), to_state=RunState.SCHEDULED, new_attempt=True)
            run_transition(run_id=run.id, from_states=(RunState.SCHEDULED,), to_state=RunState.RUNNING)
            now = time.time()
            metrics_log(run_id=run.id, attempt=1,
                        points=[MetricPoint("loss", step, 1.0 / (step + 1), now) for step in range(10)])
            run_transition(run_id=run.id, from_states=(RunState.RUNNING,), to_state=RunState.SUCCEEDED)
            return
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sample", CLIENT_SAMPLES, ids=[sample.where for sample in CLIENT_SAMPLES])
def test_client_sample_runs_against_a_server_for_a_new_user(sample, live_server, settings, tmp_path, capsys, monkeypatch):
    from tests.webapp.factories import UserFactory
    from webapp.experiments.models import Run

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "samples"}}
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "storage")}}}
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    user = UserFactory(username="alice")  # the README's user, with no projects yet
    token = token_create(user=user, name="samples")[1]
    assert CLIENT_URL in sample.code and CLIENT_TOKEN in sample.code, f"{sample.where}: expected Client({CLIENT_URL!r}, {CLIENT_TOKEN!r})"
    code = sample.code.replace(CLIENT_URL, live_server.url).replace(CLIENT_TOKEN, token)
    stop = threading.Event()
    worker = threading.Thread(target=_play_the_worker, args=(stop,), daemon=True)
    worker.start()
    try:
        _run(code, sample.where)
    except Exception as exc:
        from webapp.client.client import KilnError

        if isinstance(exc, KilnError) and exc.status == 404:
            pytest.fail(f"{sample.where}: {exc}: a client sample must create the project it uses "
                        "(kiln.create_project(...)), as a new user has none")
        raise
    finally:
        stop.set()
        worker.join(timeout=10)
    run = Run.objects.get()
    assert run.project.owner_user == user and run.state == "succeeded"
    if "print(" in sample.code:
        assert capsys.readouterr().out.strip(), f"{sample.where}: the sample printed nothing"

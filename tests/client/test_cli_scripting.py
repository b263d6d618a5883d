"""The `kiln` commands as scripts and CI use them: login with a token, env overrides, exit statuses of logs -f and wait."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
from django.db import connection

from scheduler.recovery import requeue_lost
from webapp.client import cli
from webapp.client.client import credentials_path, save_credentials
from webapp.experiments.models import Run, RunState
from webapp.experiments.results import logs_append


def _kiln(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _no_prompt(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("kiln login --token must not prompt")

    monkeypatch.setattr("getpass.getpass", refuse)
    monkeypatch.setattr("builtins.input", refuse)


@pytest.fixture
def logged_in(server, monkeypatch):
    monkeypatch.setenv("KILN_URL", server.url)
    monkeypatch.setenv("KILN_TOKEN", server.token)
    return server


@pytest.fixture
def run(logged_in, capsys, tmp_path) -> Run:
    config = tmp_path / "r.json"
    config.write_text('{"recipe": {"model": "mlp"}}')
    code, _, err = _kiln(capsys, "submit", str(config), "--project", logged_in.project_path)
    assert code == 0, err
    return Run.objects.get()


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch):
    monkeypatch.setattr(cli, "FOLLOW_POLL_SECONDS", 0.05)


def _finish(run: Run, state: str, reason: str = "") -> None:
    Run.objects.filter(pk=run.pk).update(state=state, failure_reason=reason)


# kiln login --token ---------------------------------------------------------------------------------------

def test_login_with_a_token_checks_it_stores_it_and_asks_nothing(server, capsys, monkeypatch):
    _no_prompt(monkeypatch)
    code, out, err = _kiln(capsys, "login", "--url", server.url, "--token", server.token)
    assert code == 0, err
    assert f"Logged in to {server.url} as {server.user.username}" in out
    assert json.loads(credentials_path().read_text()) == {"url": server.url, "token": server.token}
    assert server.token not in out + err
    code, out, _ = _kiln(capsys, "projects")  # the stored token is used
    assert code == 0 and server.project_path in out


def test_login_reads_the_token_from_stdin_with_a_dash(server, capsys, monkeypatch):
    _no_prompt(monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO(server.token + "\n"))
    code, _, err = _kiln(capsys, "login", "--url", server.url, "--token", "-")
    assert code == 0, err
    assert json.loads(credentials_path().read_text())["token"] == server.token


def test_login_with_a_refused_token_says_so_and_keeps_what_was_stored(server, capsys, monkeypatch):
    _no_prompt(monkeypatch)
    save_credentials(server.url, server.token)
    before = credentials_path().read_text()
    code, out, err = _kiln(capsys, "login", "--url", server.url, "--token", "kiln_not-a-real-token")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and f"{server.url} refused the token" in err and "nothing was stored" in err
    assert credentials_path().read_text() == before
    code, _, err = _kiln(capsys, "login", "--url", server.url, "--token", "  ")
    assert code == 2 and "--token is empty" in err
    assert credentials_path().read_text() == before


def test_login_with_a_token_to_a_server_that_does_not_answer_stores_nothing(server, capsys, monkeypatch, free_port):
    _no_prompt(monkeypatch)
    code, _, err = _kiln(capsys, "login", "--url", f"http://127.0.0.1:{free_port}", "--token", server.token)
    assert code == 1 and "cannot reach" in err
    assert not credentials_path().exists()


def test_login_refuses_a_username_together_with_a_token(server, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["login", "--username", "grace", "--token", server.token])
    assert stopped.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_kiln_token_and_kiln_url_override_the_stored_ones(server, capsys, monkeypatch, free_port):
    save_credentials(server.url, "kiln_revoked-long-ago")
    assert _kiln(capsys, "projects")[0] == 1  # the stored token alone is refused
    monkeypatch.setenv("KILN_TOKEN", server.token)
    code, out, err = _kiln(capsys, "projects")
    assert code == 0 and server.project_path in out, err
    save_credentials(f"http://127.0.0.1:{free_port}", server.token)
    assert "cannot reach" in _kiln(capsys, "projects")[2]  # the stored URL answers nothing
    monkeypatch.setenv("KILN_URL", server.url)
    code, out, _ = _kiln(capsys, "projects")
    assert code == 0 and server.project_path in out


def test_a_login_while_kiln_token_is_set_says_which_token_wins(server, capsys, monkeypatch):
    monkeypatch.setenv("KILN_TOKEN", server.token)
    code, _, err = _kiln(capsys, "login", "--url", server.url, "--token", server.token)
    assert code == 0 and "KILN_TOKEN is set, and overrides the stored token" in err


# kiln logs -f and kiln wait: the exit status is how the run ended ------------------------------------------

@pytest.mark.parametrize(("state", "status"), [("succeeded", 0), ("failed", cli.EXIT_FAILED),
                                                ("cancelled", cli.EXIT_CANCELLED)])
def test_wait_prints_the_final_state_and_exits_with_its_status(run, capsys, state, status):
    _finish(run, state, "exit code 1" if state == "failed" else "")
    code, out, err = _kiln(capsys, "wait", str(run.id))
    assert code == status, err
    assert out.strip() == f"Run {run.id} {state}" + (": exit code 1" if state == "failed" else "")


def test_logs_follow_exits_with_the_runs_final_status(run, capsys):
    logs_append(run_id=run.id, lines=[(0, "stdout", "epoch 1"), (1, "stderr", "Traceback: boom")])
    _finish(run, RunState.FAILED, "exit code 1")
    code, out, err = _kiln(capsys, "logs", "-f", str(run.id))
    assert code == cli.EXIT_FAILED
    assert out.splitlines() == ["epoch 1"] and err.splitlines() == ["Traceback: boom", f"Run {run.id} failed: exit code 1"]
    code, out, _ = _kiln(capsys, "logs", str(run.id))  # without -f, printing the log is all it does
    assert code == 0 and out.splitlines() == ["epoch 1"]
    _finish(run, RunState.SUCCEEDED)
    code, out, err = _kiln(capsys, "logs", "-f", str(run.id))
    assert code == 0 and out.splitlines() == ["epoch 1"] and err.splitlines() == ["Traceback: boom"]
    _finish(run, RunState.CANCELLED)
    assert _kiln(capsys, "logs", "-f", str(run.id))[0] == cli.EXIT_CANCELLED


def _later(action, delay: float = 0.3) -> threading.Thread:
    def act() -> None:
        time.sleep(delay)
        try:
            action()
        finally:
            connection.close()

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_a_run_lost_for_good_ends_logs_follow_and_wait_as_failed(run, capsys):
    Run.objects.filter(pk=run.pk).update(state=RunState.LOST, attempt=run.max_attempts)
    thread = _later(requeue_lost)  # what the scheduler does next: no attempts left, so it fails the run
    code, _, err = _kiln(capsys, "logs", "-f", str(run.id))
    thread.join()
    assert code == cli.EXIT_FAILED and "its worker was lost" in err and "giving up" in err
    code, out, _ = _kiln(capsys, "wait", str(run.id))
    assert code == cli.EXIT_FAILED and "its worker was lost" in out


def test_wait_follows_a_run_to_its_end_and_gives_up_at_the_timeout(run, capsys):
    thread = _later(lambda: _finish(run, RunState.SUCCEEDED))
    code, out, err = _kiln(capsys, "wait", str(run.id), "--timeout", "30")
    thread.join()
    assert code == 0 and out.strip() == f"Run {run.id} succeeded", err
    Run.objects.filter(pk=run.pk).update(state=RunState.RUNNING)
    started = time.monotonic()
    code, out, err = _kiln(capsys, "wait", str(run.id), "--timeout", "0.2")
    assert code == cli.EXIT_TIMEOUT and out == "" and f"run {run.id} is still running after 0.2 s" in err
    assert time.monotonic() - started < 5


def test_wait_on_a_missing_run_or_with_a_bad_timeout_is_an_error(logged_in, capsys):
    code, _, err = _kiln(capsys, "wait", "987654")
    assert code == 1 and err.startswith("kiln: error:")
    for bad in ("soon", "-1", "nan", "inf"):
        with pytest.raises(SystemExit) as stopped:
            cli.main(["wait", "1", "--timeout", bad])
        assert stopped.value.code == 2
        assert "--timeout" in capsys.readouterr().err


def test_the_exit_statuses_are_in_the_help(capsys):
    for command in ("wait", "logs"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert "exit status" in text and f"{cli.EXIT_FAILED}  the run failed" in text
        assert f"{cli.EXIT_CANCELLED}  the run was cancelled" in text

"""The `kiln run` supervisor: backoff and crash limit (pure), and restarts of real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from webapp.supervisor import Child, Crash, CrashHistory, RestartPolicy, describe_exit, read_state, supervise

POLICY = RestartPolicy()
REPO_ROOT = Path(__file__).resolve().parents[2]


def _delays(history: CrashHistory, crashes: list[tuple[float, float]]) -> list[float | None]:
    return [history.crashed(at=at, ran_for=ran_for) for at, ran_for in crashes]


def test_backoff_doubles_from_one_second_and_is_capped_at_thirty():
    history = CrashHistory(RestartPolicy(crash_limit=100))
    assert _delays(history, [(i * 100.0, 1.0) for i in range(8)]) == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_child_that_ran_well_for_a_while_starts_its_backoff_again():
    history = CrashHistory(POLICY)
    assert _delays(history, [(0, 1), (100, 1), (200, 1)]) == [1, 2, 4]
    assert _delays(history, [(300, POLICY.healthy_after), (301, 1)]) == [1, 2]


def test_the_fifth_crash_within_sixty_seconds_gives_up():
    history = CrashHistory(POLICY)
    assert _delays(history, [(0, 0.5), (2, 0.5), (5, 0.5), (10, 0.5)]) == [1, 2, 4, 8]
    assert history.crashed(at=59.9, ran_for=0.5) is None


def test_crashes_older_than_the_window_do_not_count():
    history = CrashHistory(RestartPolicy(healthy_after=1000))
    assert None not in _delays(history, [(t, 0.5) for t in (0, 20, 40, 59, 60.5, 80, 100, 119.5, 121)])


def test_an_exit_is_described_by_its_code_or_its_signal():
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert Crash("web", "exit code 1", ["a", "b", "c", "Error: port in use"]).error == "exit code 1: b | c | Error: port in use"


FAST = RestartPolicy(first_delay=0.05, max_delay=0.2, healthy_after=5, crash_limit=3, crash_window=30)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_keeps_crashing_stops_everything_and_its_last_lines_are_reported(tmp_path, caplog, capfd):
    crashes: list[Crash] = []
    code = supervise([Child("steady", _python("import time; time.sleep(60)")),
                      Child("broken", _python("print('starting'); raise SystemExit('bad setting X')"))],
                     policy=FAST, stop_timeout=5, state_file=tmp_path / "supervisor.json", on_crash=crashes.append)
    assert code == 1
    assert [c.name for c in crashes] == ["broken", "broken"]  # the third crash gives up instead
    assert crashes[0].error == "exit code 1: starting | bad setting X"
    assert "broken crashed 3 times within 30 s; stopping Kiln. Its last error: exit code 1: starting | bad setting X" \
        in caplog.text
    assert capfd.readouterr().out.count("starting") == 3  # the children's output is relayed
    assert not (tmp_path / "supervisor.json").exists()  # removed at stop


def test_an_exit_a_restart_cannot_mend_stops_everything_at_once(caplog):
    crashes: list[Crash] = []
    started = time.monotonic()
    code = supervise([Child("steady", _python("import time; time.sleep(60)")),
                      Child("worker", _python("print('name taken'); raise SystemExit(3)"), fatal_exit_codes=frozenset({3}))],
                     policy=FAST, stop_timeout=5, on_crash=crashes.append)
    assert code == 1 and crashes == []  # not restarted even once
    assert time.monotonic() - started < 10
    assert "worker cannot run (exit code 3: name taken); stopping Kiln" in caplog.text


def test_a_killed_child_is_restarted_and_the_state_file_counts_it(tmp_path):
    state = tmp_path / "supervisor.json"
    marker = tmp_path / "starts"
    child = _python(f"open({str(marker)!r}, 'a').write('x'); import time; time.sleep(60)")
    script = (f"from webapp.supervisor import Child, RestartPolicy, supervise; from pathlib import Path; "
              f"raise SystemExit(supervise([Child('worker', {child!r})], policy={FAST!r}, "
              f"state_file=Path({str(state)!r})))")
    supervisor = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT)
    try:
        first = _wait_for(lambda: (read_state(state) or {}).get("worker", {}).get("pid"))
        _wait_for(lambda: marker.exists() and marker.read_text() == "x")  # killed only once it has started
        os.kill(first, signal.SIGKILL)
        restarted = _wait_for(lambda: (read_state(state) or {}).get("worker", {}).get("pid") not in (None, first)
                              and read_state(state))
        assert restarted["worker"]["restarts"] == 1
        assert restarted["worker"]["last_error"] == "killed by SIGKILL"
        assert json.loads(state.read_text())["supervisor_pid"] == supervisor.pid
        _wait_for(lambda: marker.exists() and marker.read_text() == "xx")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=10) == 0
        assert not psutil.pid_exists(restarted["worker"]["pid"])
        assert read_state(state) is None
    finally:
        supervisor.kill()
        supervisor.wait()


def _wait_for(probe, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("timed out")

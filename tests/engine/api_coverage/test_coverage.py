"""The PyTorch coverage report: it runs, no covered name leaves the engine, exclusions are reviewed."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402 - the script sits beside this test


@pytest.fixture(scope="module")
def measured(torch):
    exclusions = report.read_exclusions()
    return report.measure(exclusions), exclusions


def test_no_covered_name_leaves_the_engine():
    frozen = report.read_covered()
    assert sum(len(names) for names in frozen.values()) > 800
    lost = []
    for namespace, names in frozen.items():
        assert namespace in report.NAMESPACES, f"covered.txt names an unknown namespace {namespace!r}"
        ours = report.resolve(report.NAMESPACES[namespace][1])
        lost += [f"{namespace}.{n}" for n in sorted(names) if ours is None or not report._has(ours, n)]
    assert not lost, f"names the engine had are gone (restore them, or justify removing them from covered.txt): {lost}"


def test_covered_list_has_no_duplicates():
    lines = report.COVERED.read_text().split()
    assert len(lines) == len(set(lines))


def test_every_exclusion_is_reasoned_unique_and_still_needed(measured):
    _, exclusions = measured
    seen = set()
    for e in exclusions:
        where = f"exclusions.txt line {e.line} ({e.namespace}: {e.pattern})"
        assert e.namespace in report.NAMESPACES, f"{where}: unknown namespace"
        assert e.pattern, f"{where}: no name"
        assert len(e.reason.split()) >= 3, f"{where}: every exclusion needs its reason (a few words after '#')"
        assert (e.namespace, e.pattern) not in seen, f"{where}: listed twice"
        seen.add((e.namespace, e.pattern))
        assert e.matched, f"{where}: matches no missing torch name (the engine has it now, or torch dropped it)"


def test_no_exclusion_hides_a_name_the_engine_has(measured):
    rows, exclusions = measured
    for row in rows:
        rules = [e.pattern for e in exclusions if e.namespace == row.namespace]
        hidden = [n for n in row.covered if any(fnmatch.fnmatchcase(n, p) for p in rules)]
        assert not hidden, f"{row.namespace}: excluded yet covered, drop the exclusion: {hidden}"


def test_every_name_is_counted_once(measured):
    rows, _ = measured
    for row in rows:
        groups = [set(row.covered), set(row.excluded), set(row.missing)]
        assert sum(map(len, groups)) == row.total == len(set().union(*groups))


def test_the_script_prints_the_table(torch):
    out = subprocess.run([sys.executable, str(HERE / "report.py")], capture_output=True, text=True, timeout=300,
                         check=True).stdout
    print(out)  # the table in the CI log
    for namespace in report.NAMESPACES:
        assert f"\n{namespace} " in out
    assert "coverage = covered / (total - excluded)" in out

"""Server time of Kiln's always-on pages, against a bare Django view as the baseline.

Run: `python tests/benchmarks/bench_web_requests.py` (or `make bench`). Prints one JSON object.
Uses an in-memory SQLite database so it needs no services.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ["KILN_DATA_DIR"] = tempfile.mkdtemp(prefix="kiln-bench-")
os.environ["DATABASE_URL"] = "sqlite:///:memory:"
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.test import Client, RequestFactory  # noqa: E402

from webapp.bootstrap import prepare_data_dirs  # noqa: E402

REPEATS = 300


def median_ms(call) -> float:
    for _ in range(20):
        call()
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    prepare_data_dirs()
    call_command("migrate", verbosity=0)
    client = Client()
    factory = RequestFactory()

    def bare_view(request):
        return JsonResponse({"ok": True})

    baseline = median_ms(lambda: bare_view(factory.get("/")))
    results = {}
    for name, url in (("login_page", "/"), ("healthz", "/healthz")):
        ms = median_ms(lambda url=url: client.get(url))
        results[name] = {"median_ms": round(ms, 3), "ratio_to_bare_django_view": round(ms / baseline, 1)}
    print(json.dumps({"benchmark": "web_requests", "bare_django_view_ms": round(baseline, 4), **results}))


if __name__ == "__main__":
    main()

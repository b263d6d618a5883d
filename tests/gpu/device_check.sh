#!/usr/bin/env bash
# The one GPU check: on a machine with an NVIDIA GPU, run `pytest -m gpu` on real CuPy, every GPU benchmark
# (tests/benchmarks/bench_gpu*.py) and the worker recipe check (tests/gpu/worker_recipe.py) when present, and
# write one JSON summary, $OUT/device_check.json. Every step has its own timeout; the whole stays under 8 min.
#
# Usage: tests/gpu/device_check.sh [--dry-run]
#   OUT     where the summary and logs go (default test-artifacts/gpu)
#   PYTHON  the interpreter (default python3: on the GPU machine, the system one that holds torch and CuPy;
#           the repository is put on PYTHONPATH, no venv is needed)
#   --dry-run  no GPU needed: probes the environment, collects the GPU tests without running them, lists the
#              benchmarks; the summary's shape is the same.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
OUT="${OUT:-$ROOT/test-artifacts/gpu}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
LOGS="$(mktemp -d)"
STEPS="$LOGS/steps.tsv"
: >"$STEPS"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
unset CI  # tests/conftest.py would demand PostgreSQL, Redis and Chromium under CI=true
BUDGET=${DEVICE_CHECK_BUDGET_S:-450}  # 7.5 min of steps; the summary takes seconds
START=$SECONDS

# run NAME LIMIT_S CMD...: one step under `timeout`, never past the overall budget; logs to $LOGS/NAME.log
run() {
  local name=$1 limit=$2 left rc t0
  shift 2
  left=$((BUDGET - (SECONDS - START)))
  if ((left < 10)); then
    printf '%s\t%s\t%s\t%s\n' "$name" "skipped" 0 "out of time budget" >>"$STEPS"
    return
  fi
  ((limit > left)) && limit=$left
  t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  local status=passed
  ((rc == 124 || rc == 137)) && status=timeout
  ((rc != 0 && rc != 124 && rc != 137)) && status=failed
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" $((SECONDS - t0)) "rc=$rc" >>"$STEPS"
  echo "device_check: $name $status ($((SECONDS - t0)) s)"
}

# The project's pytest settings minus DJANGO_SETTINGS_MODULE (pytest-django is not on the GPU machine and an
# unknown ini key is an error under filterwarnings=error).
INI="$LOGS/pytest.ini"
cat >"$INI" <<'INI'
[pytest]
addopts = -ra --strict-markers --import-mode=importlib -p no:cacheprovider
filterwarnings = error
markers =
    gpu: needs CuPy and a CUDA device; skipped cleanly without them
    slow: takes more than a few seconds
INI

run environment 60 "$PY" - "$OUT/environment.json" <<'PYEOF'
import importlib, json, platform, subprocess, sys
info = {"python": platform.python_version(), "packages": {}}
for name in ("numpy", "ml_dtypes", "cupy", "torch", "onnx", "onnxruntime", "pynvml", "django", "safetensors"):
    try:
        info["packages"][name] = getattr(importlib.import_module(name), "__version__", "present")
    except Exception as exc:  # missing or broken: recorded, not fatal
        info["packages"][name] = f"missing ({type(exc).__name__})"
try:
    info["nvidia_smi"] = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=20).stdout.strip()
except Exception as exc:
    info["nvidia_smi"] = f"unavailable ({type(exc).__name__})"
try:
    import engine
    info["engine_cuda_available"] = engine.cuda.is_available()
    info["engine_cuda_device_count"] = engine.cuda.device_count()
    if info["engine_cuda_available"]:
        info["engine_cuda_device_name"] = engine.cuda.get_device_name(0)
except Exception as exc:
    info["engine_error"] = repr(exc)
json.dump(info, open(sys.argv[1], "w"), indent=1)
print(json.dumps(info))
PYEOF

# Engine GPU tests on the real GPU (the fake_cupy half of each test runs in CI; deselected here), in two
# steps so that a slow first one (CuPy compiles each kernel once, cold cache) still leaves the others their time:
# the op table and the engine.cuda / fused-kernel tests first, then the benchmarks and the recipe, then the rest.
# DEVICE_CHECK_TESTS replaces both with one list of paths (the CI test of --dry-run uses it).
if [[ -n "${DEVICE_CHECK_TESTS:-}" ]]; then
  read -r -a OPS_TESTS <<<"$DEVICE_CHECK_TESTS"
  SUITE_TESTS=()
else
  OPS_TESTS=(tests/engine/test_gpu.py tests/engine/test_cuda_api.py tests/engine/test_cuda_kernels.py
             tests/engine/test_cuda_fake_kernels.py)
  SUITE_TESTS=(tests/engine)
  for t in "${OPS_TESTS[@]}"; do SUITE_TESTS+=(--deselect "$t"); done
fi
pytest_step() {  # NAME LIMIT PATHS...
  local name=$1 limit=$2
  shift 2
  local args=("$PY" -m pytest -c "$INI" --rootdir "$ROOT" -m gpu -k "not fake_cupy" --continue-on-collection-errors
              --junitxml "$OUT/$name.xml" "$@")
  if ((DRY)); then
    run "$name" 120 "${args[@]}" --collect-only -q
  else
    run "$name" "$limit" "${args[@]}" -q --durations=10
  fi
}
pytest_step pytest_gpu_ops 170 "${OPS_TESTS[@]}"

# GPU benchmarks: each prints one JSON object (the last line of its output is kept).
shopt -s nullglob
for bench in tests/benchmarks/bench_gpu*.py; do
  name="bench_$(basename "$bench" .py)"
  if ((DRY)); then
    printf '%s\t%s\t%s\t%s\n' "$name" "listed" 0 "dry run" >>"$STEPS"
  else
    run "$name" 130 "$PY" "$bench"
  fi
done

# One recipe through a real worker with NVML metrics (needs the platform's Python dependencies).
if [[ -f tests/gpu/worker_recipe.py ]]; then
  if ((DRY)); then
    printf '%s\t%s\t%s\t%s\n' worker_recipe listed 0 "dry run" >>"$STEPS"
  else
    run worker_recipe 80 "$PY" tests/gpu/worker_recipe.py
  fi
else
  printf '%s\t%s\t%s\t%s\n' worker_recipe skipped 0 "tests/gpu/worker_recipe.py does not exist yet" >>"$STEPS"
fi

((${#SUITE_TESTS[@]})) && pytest_step pytest_gpu_suites 150 "${SUITE_TESTS[@]}"

"$PY" - "$STEPS" "$LOGS" "$OUT" "$DRY" $((SECONDS - START)) <<'PYEOF'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
steps_file, logs, out, dry, seconds = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
summary = {"dry_run": dry, "seconds": seconds, "steps": [], "benchmarks": {}, "pytest": None}
for line in Path(steps_file).read_text().splitlines():
    name, status, took, note = line.split("\t")
    log = logs / f"{name}.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    summary["steps"].append({"name": name, "status": status, "seconds": int(took), "note": note,
                             "log_tail": tail if status not in ("passed", "listed") else tail[-300:]})
    if name == "worker_recipe" and status == "passed":
        lines = [ln for ln in tail.splitlines() if ln.strip().startswith("{")]
        try:
            summary["worker_recipe"] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            summary["worker_recipe"] = {"error": "no JSON line in the output"}
    if name.startswith("bench_") and status == "passed":
        lines = [ln for ln in tail.splitlines() if ln.strip().startswith("{")]
        try:
            summary["benchmarks"][name] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            summary["benchmarks"][name] = {"error": "no JSON line in the output"}
env = out / "environment.json"
summary["environment"] = json.loads(env.read_text()) if env.exists() else None
for junit in sorted(out.glob("pytest_gpu_*.xml")):
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["failed_tests"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                              if c.find("failure") is not None or c.find("error") is not None][:50]
    summary["pytest"] = summary["pytest"] or {}
    summary["pytest"][junit.stem] = counts
summary["ok"] = all(s["status"] in ("passed", "listed", "skipped") for s in summary["steps"]) and \
    summary["environment"] is not None and (dry or (summary["environment"] or {}).get("engine_cuda_available") is True)
(out / "device_check.json").write_text(json.dumps(summary, indent=1))
print(json.dumps({k: summary[k] for k in ("ok", "dry_run", "seconds", "pytest")}))
sys.exit(0 if summary["ok"] else 1)
PYEOF
status=$?
cp "$LOGS"/pytest_gpu_*.log "$OUT"/ 2>/dev/null  # the full test logs too (at most 6 files in all come back)
rm -rf "$LOGS"
exit $status

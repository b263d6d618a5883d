# The few commands everyone uses. The README and .ci/run call these same targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint bench clean mlflow-server vendor-plotly

## run: start Kiln on http://127.0.0.1:8000 (web server, scheduler, one local worker); Ctrl-C stops all
run: $(VENV)/.installed-runtime
	$(VENV)/bin/kiln run

## test: lint, then the whole test suite (uses PostgreSQL and Redis when they answer locally)
test: lint
	@eval "$$($(PY) tests/services.py)"; $(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff and mypy
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## bench: every benchmark in tests/benchmarks, each printing one JSON object (on PostgreSQL/Redis when they answer)
bench: $(VENV)/.installed-dev
	@eval "$$($(PY) tests/services.py)"; for script in tests/benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

## vendor-plotly: replace the plotly.js bundle the pages load (its gl2d partial bundle) by version PLOTLY_JS, from npm
PLOTLY_JS ?= 4.1.1
vendor-plotly:
	@folder=$$(mktemp -d) && cd $$folder && npm pack --silent plotly.js@$(PLOTLY_JS) >/dev/null \
	  && tar xzf plotly.js-$(PLOTLY_JS).tgz package/dist/plotly-gl2d.min.js package/LICENSE \
	  && cp package/dist/plotly-gl2d.min.js $(CURDIR)/webapp/experiments/vendor/plotly-gl2d.min.js \
	  && cp package/LICENSE $(CURDIR)/webapp/experiments/vendor/LICENSE-plotly.js.txt && rm -rf $$folder
	@sed -n 2p webapp/experiments/vendor/plotly-gl2d.min.js

clean:
	rm -rf $(VENV) $(MLFLOW_VENV) .pytest_cache .ruff_cache .mypy_cache

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Kiln needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-runtime: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	@touch $@

# The MLflow tracking server the `kiln import mlflow` test and its benchmark start (test-only; its own
# venv because mlflow pins gunicorn<27, which Kiln's web server cannot use).
MLFLOW_VENV ?= .venv-mlflow
mlflow-server: $(MLFLOW_VENV)/.installed
$(MLFLOW_VENV)/.installed:
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet 'mlflow>=3,<4' psycopg2-binary  # psycopg2: the peer benchmarks run MLflow on the same PostgreSQL
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed-runtime

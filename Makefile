# Two commands: `make run` serves Glue on 127.0.0.1:5000 (SQLite, demo data) and
# prints where to go, whom to sign in as and a first call to try;
# `make test` runs the whole suite (SQLite, and PostgreSQL when reachable).
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run serve migrate demo test fuzz lint format clean bench profile studio-bundle

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

migrate: install
	$(BIN)/flask db upgrade
	$(BIN)/flask forms publish

demo: migrate
	$(BIN)/flask demo load

# The web server and the job worker that places calls, together (honcho runs
# the Procfile's web and worker; its release step is `make migrate`).
SERVE = PATH="$(CURDIR)/$(BIN):$$PATH" BIND=$(HOST):$(PORT) $(BIN)/honcho start web worker

# What to open and try is printed last before the server's own log, from what the
# database and configuration hold (`flask demo info`).
# An edited flow file is published as soon as a worker sees it (GLUE_FLOWS_AUTO_PUBLISH).
# Calls go to the built-in sandbox (it rings nobody) unless GLUE_CALL_PROVIDER
# names a provider: only here, never a deployment's default.
RUN_ENV = GLUE_FLOWS_AUTO_PUBLISH=$${GLUE_FLOWS_AUTO_PUBLISH:-true} \
	GLUE_CALL_PROVIDER=$${GLUE_CALL_PROVIDER:-sandbox} \
	$(if $(GLUE_CALL_PROVIDER),,GLUE_VERIFY_PROVIDER=$${GLUE_VERIFY_PROVIDER:-sandbox}) \
	GLUE_PUBLIC_URL=$${GLUE_PUBLIC_URL:-http://$(HOST):$(PORT)}

run: demo
	@$(RUN_ENV) $(BIN)/flask demo info --url http://$(HOST):$(PORT)
	@$(RUN_ENV) $(SERVE)

serve: install
	$(SERVE)

test: install
	$(BIN)/pytest

# Glue against a floor app under wrk (Debian: apt-get install -y wrk), SQLite and
# PostgreSQL, 1k and 1M users, an overload run on each, plus the XML
# micro-benchmark: about 10 minutes.
# BENCH_ARGS=--quick for a 3-minute pass.
bench: install
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk"; exit 1; }
	$(BIN)/python -m bench $(BENCH_ARGS)

# Where a verification step's time goes: pyinstrument, report in bench/out/.
profile: install
	$(BIN)/python -m bench profile $(PROFILE_ARGS)

# The property-based tests of every route and CLI command, with 50x the examples.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz

# The flow editor's script: CodeMirror 6 at the versions studio/package-lock.json
# pins, bundled by esbuild into app/static/admin/studio.js. The bundle is
# committed, so `make run` and `make test` need no Node; rebuild it after
# changing studio/ (needs Node 20 and npm).
studio-bundle:
	cd studio && npm ci --no-audit --no-fund && npm run build

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache

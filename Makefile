# One entry point for people and CI. Every target bootstraps .venv from the pinned
# requirements when it is missing or older than them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RUN_DIR := .run

# Fixed local ports of the offline cloud (README: "The emulators").
GCS_PORT ?= 9023
VERTEX_PORT ?= 9024
VERTEX_GRPC_PORT ?= 9025

.PHONY: help venv test test-random mutation lint demo emulators emulators-stop bench bench-prep faults soak up down deploy-composer composer-twin clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## create or refresh .venv from the pinned requirements

test: $(STAMP) ## run the whole test suite (starts and stops the emulators and Airflow it needs)
	$(PY) -m pytest

test-random: $(STAMP) ## the whole suite in a random order (pytest-randomly); SEED=N repeats one order
	$(PY) -m pytest -p randomly $(if $(SEED),--randomly-seed=$(SEED))

mutation: $(STAMP) ## mutmut on the money- and data-critical modules, their fast tests only -> bench/MUTATION.md; MODULES=a,b; RETEST=1: survivors only
	$(PY) -m tests.mutation.run $(if $(MODULES),--modules $(MODULES)) $(if $(RETEST),--retest)

lint: $(STAMP) ## ruff (with Airflow's AIR3 rules) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

emulators: $(STAMP) ## start the GCS (:$(GCS_PORT)) and Vertex AI (:$(VERTEX_PORT), gRPC :$(VERTEX_GRPC_PORT)) emulators in the background
	$(PY) -m scripts.emulators start --run-dir $(RUN_DIR) --gcs-port $(GCS_PORT) --vertex-port $(VERTEX_PORT) \
		--vertex-grpc-port $(VERTEX_GRPC_PORT)

emulators-stop: ## stop exactly the emulators `make emulators` started
	@test -x $(PY) && $(PY) -m scripts.emulators stop --run-dir $(RUN_DIR) || true

demo: $(STAMP) ## the DAG end to end against the emulators (dag.test), with a readable summary
	$(PY) -m scripts.demo

up: $(STAMP) ## a real local Airflow (api-server :8080, scheduler, dag-processor, triggerer) + emulators; ARIA_DB=postgres for PostgreSQL
	$(PY) -m scripts.local_airflow up --run-dir $(RUN_DIR) --gcs-port $(GCS_PORT) --vertex-port $(VERTEX_PORT) \
		--vertex-grpc-port $(VERTEX_GRPC_PORT)

down: ## stop exactly the processes `make up` started
	@test -x $(PY) && $(PY) -m scripts.local_airflow down --run-dir $(RUN_DIR) || true

deploy-composer: $(STAMP) ## aria_tuning as a wheel + PyPI package, the plugin and DAG to Cloud Composer 3 (COMPOSER_ENV; DRY_RUN=1 prints)
	$(PY) -m scripts.deploy_composer

composer-twin: $(STAMP) ## a local Composer 3 twin (Airflow 3.3.1 venv, PostgreSQL, 2 triggerers): its tests, old layout and end to end
	ARIA_TWIN=all $(PY) -m pytest tests/composer -rA

bench-prep: $(STAMP) ## data-prep benchmark: 1M examples (~0.5 GB) validate+convert+split, MB/s, peak RSS, pandas baseline
	$(PY) -m bench.prep_bench

bench: $(STAMP) ## all benchmarks (parse cost, 500 waits on REST and gRPC, slot-seconds, detection latency, finish detection, data prep against its floor) -> bench/RESULTS.md
	$(PY) -m bench.run_all

faults: $(STAMP) ## the whole fault suite (9 scenarios on a real local Airflow, 6 on two triggerers and PostgreSQL); `make test` runs the CI subset
	ARIA_FAULTS=all $(PY) -m pytest tests/faults -m faults -rA

RUNS ?= 10
soak: $(STAMP) ## RUNS DAG runs under faults drawn from SEED (two triggerers, PostgreSQL; SHARDS stacks side by side): invariants -> bench/SOAK.md
	$(PY) -m bench.soak --runs $(RUNS) --seed $(or $(SEED),1) --shards $(or $(SHARDS),1)

clean: ## remove run state and caches (keeps .venv)
	rm -rf $(RUN_DIR) .pytest_cache .mypy_cache .ruff_cache

# mmsvc: `make run` to see it make markets, `make test` to prove it. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= $(CURDIR)/.run
export MMSVC_RUN_DIR := $(RUN_DIR)
PROTO := mmsvc/adapters/metadata/proto/metadata.proto
PROTO_GEN := mmsvc/adapters/metadata/proto/metadata_pb2.py
STACK_ENV := $(RUN_DIR)/stack.env
# make run HOSTS=3: three local "hosts" (supervisords) in one consumer group on one dev stack.
HOSTS ?= 1
SOAK_MINUTES ?= 30
# make chaos CHAOS_MINUTES=30: how long the chaos run disturbs the hosts.
CHAOS_MINUTES ?= 10
# make chaos CHAOS_ARGS="--kinds kill9,restart --seed 7": more options of the chaos run.
CHAOS_ARGS ?=

.PHONY: help venv proto prometheus pgbouncer services stop migrate lint test coverage test-long test-unit bench run soak chaos clean

help: ## List the targets with what each does
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing mmsvc and its dependencies into $(VENV) with uv (from PyPI; first time about 20 s)"
	@$(PY) -m pip install -q --disable-pip-version-check uv > $(VENV)/install.log 2>&1 \
		&& $(VENV)/bin/uv pip install --python $(PY) -e '.[dev]' >> $(VENV)/install.log 2>&1 \
		|| { tail -30 $(VENV)/install.log; echo "install failed: see $(VENV)/install.log"; exit 1; }
	@touch $@

# The Metadata gRPC stubs are generated from the contract at build time, never committed.
$(PROTO_GEN): $(PROTO) $(STAMP)
	@$(PY) -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. --pyi_out=. $(PROTO)

venv: $(STAMP) $(PROTO_GEN) ## Create .venv and install everything (idempotent, fast when done)

proto: $(PROTO_GEN) ## Generate the Metadata gRPC stubs from the .proto

# Debian's prometheus (server and promtool), installed once; a no-op when promtool is there.
# policy-rc.d (exit 101) keeps apt from starting the package's own service on :9090, where
# our METRICS_PORT listens; our Prometheus runs on a free port from the run directory.
prometheus: ## Install Debian's prometheus (server and promtool) when missing
	@command -v promtool > /dev/null && test -x /usr/bin/prometheus || { \
		echo "installing Debian's prometheus (server and promtool), once"; \
		guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1; fi; \
		rc=0; { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends prometheus; } > /tmp/mmsvc-prometheus-install.log 2>&1 || rc=$$?; \
		if [ -n "$$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
		if [ -d /run/systemd/system ]; then systemctl disable --now prometheus > /dev/null 2>&1 || true; fi; \
		test $$rc -eq 0 && command -v promtool > /dev/null || { \
			echo "cannot install Debian's prometheus (needs root and apt; see /tmp/mmsvc-prometheus-install.log)"; exit 1; }; }


# D27: the dev stack puts Debian's PgBouncer (transaction mode) in front of
# PostgreSQL. Installed once when missing; a no-op check when present. The
# package's own system service is stopped and disabled: the dev stack starts
# its own pgbouncer on a free port, and the system one must not hold 6432.
pgbouncer: ## Install Debian's pgbouncer when missing (the dev stack's connection pooler, D27)
	@if ! command -v pgbouncer > /dev/null && ! test -x /usr/sbin/pgbouncer; then \
		echo "installing Debian's pgbouncer (once)"; \
		if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; } \
			> /tmp/mmsvc-pgbouncer-install.log 2>&1; then \
			{ service pgbouncer stop; update-rc.d pgbouncer disable; } > /dev/null 2>&1 || true; \
		else \
			echo "pgbouncer: could not install the Debian package (needs root and apt: 'apt-get install pgbouncer'); see /tmp/mmsvc-pgbouncer-install.log"; \
		fi; \
	fi

services: venv prometheus pgbouncer ## Start the dev stack alone: PostgreSQL/Redis check, broker, registry, simulator, PgBouncer, Prometheus
	@$(PY) -m mmsvc.devstack.stack up

stop: ## Stop every process this checkout started: the service and every local host (orders canceled first), then the dev stack
	@if [ -x $(PY) ]; then $(PY) -m mmsvc.devstack.stack down; else echo "nothing to stop"; fi

migrate: venv ## Apply the database migrations to the dev stack's database
	@test -f $(STACK_ENV) || { echo "the dev stack is not up: run 'make services' first"; exit 1; }
	@set -a; source $(STACK_ENV); set +a; $(VENV)/bin/alembic upgrade head

lint: venv ## ruff and mypy
	@$(VENV)/bin/ruff check mmsvc tests alembic
	@$(VENV)/bin/ruff format --check mmsvc tests alembic
	@$(VENV)/bin/mypy mmsvc tests

test: venv prometheus pgbouncer ## Lint, then every test (unit, integration, end-to-end, promtool rule tests) against a dev stack of its own
	@$(MAKE) --no-print-directory lint
	@$(PY) -m mmsvc.devstack.services
	@$(PY) -m pytest --durations=20

coverage: venv prometheus pgbouncer ## make test's tests with line coverage of mmsvc (a report, no gate; about a minute slower)
	@$(PY) -m mmsvc.devstack.services
	@$(PY) -m pytest --cov=mmsvc --cov-report=term

test-long: venv prometheus pgbouncer ## The minute-long and quarantined end-to-end runs make test leaves out
	@$(PY) -m mmsvc.devstack.services
	@$(PY) -m pytest -m "long or quarantined"

test-unit: venv ## The fast unit tests only
	@$(PY) -m pytest tests/unit -q

bench: venv pgbouncer ## Benchmarks: print figures and write them to bench-results/ (BENCH="scale --symbols 20": one, with options)
	@$(PY) -m tests.bench $(BENCH)

run: venv prometheus pgbouncer ## Start the dev stack and the service, enable the demo symbols, print where to look (HOSTS=3: three local hosts)
	@$(PY) -m mmsvc.devstack.run --hosts $(HOSTS)

chaos: venv prometheus pgbouncer ## Three hosts, a dozen ACTIVE symbols, kills/stops/restarts/joins every 20-40 s, then the checks (CHAOS_MINUTES=10)
	@$(PY) -m mmsvc.devstack.chaos --minutes $(CHAOS_MINUTES) $(CHAOS_ARGS)

soak: venv ## Watch the running demo (make run) for SOAK_MINUTES=30 with nothing provoked: lag maxima, any kill, restart or state change
	@$(PY) -m mmsvc.devstack.soak --minutes $(SOAK_MINUTES)

clean: stop ## Remove the venv, the run directory and caches
	rm -rf $(VENV) $(RUN_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-results

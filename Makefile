# The operator's interface. `make help` lists the targets.
# One stack per run folder: CDC_STACK_DIR (default .stack/dev) and CDC_PORT_BASE (default 15400).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CDC := $(PY) -m cli
# `make test` runs its own stack, on other ports, so a developer's stack is left alone.
TEST_STACK_DIR ?= $(CURDIR)/.stack/test
TEST_PORT_BASE ?= 25400
TEST_STACK := CDC_STACK_DIR=$(TEST_STACK_DIR) CDC_PORT_BASE=$(TEST_PORT_BASE)
# `make test-docker`: the compose stack, on ports and a run folder of its own (override both to move it)
DOCKER_STACK_DIR ?= $(CURDIR)/.stack/docker-test
DOCKER_PORT_BASE ?= 27400
DOCKER_STACK := CDC_STACK_DIR=$(DOCKER_STACK_DIR) CDC_PORT_BASE=$(DOCKER_PORT_BASE)

.DEFAULT_GOAL := help
.PHONY: help install up down status env wipe deploy connectors-status workers workers-stop workers-status observe readmodel-rebuild backfill bench bench-replication chaos console console-screenshots demo test test-unit test-db lint alerts-check docker-images test-docker

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

# pip's output goes to stderr so that `make -s env` prints only KEY=value lines.
$(VENV)/.installed: pyproject.toml
	@python3 -m venv $(VENV) >&2
	@$(VENV)/bin/pip install -q --upgrade pip >&2
	@$(VENV)/bin/pip install -q -e '.[test]' >&2
	@touch $@

install: $(VENV)/.installed ## create the virtualenv with the project and its test tools

up: install ## start PostgreSQL per service of the enabled domains, Kafka, Kafka Connect, domain components (idempotent)
	$(CDC) up

down: install ## stop the workers and every process `up` started; keep all data
	$(CDC) down

status: install ## which processes run, and their addresses (exit 3 if one is stopped)
	$(CDC) status

env: install ## print the stack's addresses as KEY=value lines
	@$(CDC) env

wipe: install ## stop and delete ALL data of the stack (databases, slots, Kafka, Connect offsets)
	$(CDC) wipe

deploy: install ## check, validate and deploy the connector configs; wait until RUNNING
	$(CDC) deploy

connectors-status: install ## connector and task states
	$(CDC) connectors status

workers: install ## start every worker in the background: one per replication pair, one per read model, the saga workers (CDC_SAGA_MODE), the connector watch
	$(CDC) workers start

workers-stop: install ## stop every worker
	$(CDC) workers stop

workers-status: install ## health of every worker
	$(CDC) workers status

observe: install ## replication pairs (rows, checksums, lag) and slots (WAL retained); exit 1 unless converged and within limits
	$(CDC) observe

readmodel-rebuild: install ## wipe a read model and rebuild it from offset 0 of its topics (what retention deleted: from its tables): make readmodel-rebuild MODEL=link-clicks
	$(CDC) readmodel rebuild $(MODEL)

backfill: install ## refill a replica through an incremental snapshot: make backfill PAIR=customers-to-inventory
	$(CDC) backfill $(PAIR)

$(VENV)/.bench-installed: $(VENV)/.installed
	@$(VENV)/bin/pip install -q -e '.[bench]' >&2
	@touch $@

bench: $(VENV)/.bench-installed ## source ceiling, capture, sink race and end-to-end latency vs the JDBC sink, 1M-row memory, saga curve -> bench-results/<time>/ (options: BENCH_ARGS="--phases ...")
	$(CDC) bench $(BENCH_ARGS)

bench-replication: install ## events/s of one worker draining a pre-filled topic (median of runs)
	$(PY) -m bench.replication

chaos: install ## fault suite on the running stack: load, random kills and database stops, then the invariants (options: CHAOS_ARGS="--faults 50 --seed 1")
	$(CDC) chaos $(CHAOS_ARGS)

console: install ## serve the web console on 127.0.0.1 (CONSOLE_URL in `make env`; its actions need CONSOLE_TOKEN)
	$(CDC) console

console-screenshots: install ## PNGs of the console's main pages (path, sagas, a saga's timeline, dead letters) -> console-screenshots/
	$(PY) -m console.screenshots --out console-screenshots

demo: up deploy workers ## up, deploy, workers, then every enabled domain's demo (sample writes, captured events, replicas, sagas), and the web console in the background
	$(CDC) demo
	$(CDC) console --background

alerts-check: ## check the Prometheus alert rules and run their unit tests with promtool (observe/alerts/)
	@promtool=$$(observe/alerts/promtool.sh $(CURDIR)/.stack/tools) && cd observe/alerts && \
	  $$promtool check rules rules.yml && $$promtool test rules rules_test.yml

test-unit: install ## unit tests (no infrastructure)
	$(PY) -m pytest tests/unit -q

test-db: install ## database tier: the workers' SQL on a throwaway PostgreSQL cluster (no broker, no stack)
	$(PY) -m pytest tests/db -q

test: install ## ruff and mypy, the alert rules (promtool), unit tests, the database tier, then integration tests on a wiped test stack (.stack/test, port base 25400), stopped after unless KEEP=1
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy stack services schemas connectors streams cli observe operate bench cdc_testing console
	$(MAKE) -s alerts-check
	$(PY) -m pytest tests/unit -q
	$(PY) -m pytest tests/db -q
# a fresh test stack each run (nothing carried over from the last one: groups, backlogs, rows);
# it goes down whatever failed (up, deploy or a test), unless KEEP=1
	$(TEST_STACK) $(CDC) wipe
	$(TEST_STACK) $(CDC) up && $(TEST_STACK) $(CDC) deploy && \
	  $(TEST_STACK) $(PY) -m pytest tests/integration -q --durations=25; rc=$$?; \
	  [ -n "$$KEEP" ] || $(TEST_STACK) $(CDC) down; exit $$rc

docker-images: install ## start a Docker engine if none answers; build the compose stack's images (base image by debootstrap where none can be pulled)
	stack/docker/engine.sh
	$(CDC) compose build

# a fresh compose stack each run, brought down with its volumes whatever failed, unless KEEP=1
test-docker: docker-images ## smoke suite on the compose stack: up, deploy, workers, replication and sagas of both modes, down -v
	$(DOCKER_STACK) $(CDC) compose down --volumes
	@start=$$(date +%s); \
	  $(DOCKER_STACK) $(CDC) compose up && $(DOCKER_STACK) $(CDC) deploy && $(DOCKER_STACK) $(CDC) workers start && \
	  $(DOCKER_STACK) $(PY) -m pytest tests/docker -q; rc=$$?; \
	  [ -n "$$KEEP" ] || $(DOCKER_STACK) $(CDC) compose down --volumes; \
	  echo "test-docker: stack up, tests and down in $$(( $$(date +%s) - start ))s (exit $$rc)"; exit $$rc

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check . && $(VENV)/bin/mypy stack services schemas connectors streams cli observe operate bench cdc_testing console

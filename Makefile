# SearchFlow Event Generator. `make generate` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUTPUT_DIR ?= ./data/raw
COUNT ?= 10000
REDIS_PORT ?= 6379

REDIS_PIDFILE = /tmp/searchflow-redis-$(REDIS_PORT).pid
REDIS_LOG = /tmp/searchflow-redis-$(REDIS_PORT).log

.PHONY: help install install-dev generate report stream test test-all lint schemas bench bench-redis redis-up redis-down wheel clean
.DEFAULT_GOAL := help

## List the targets and what they do.
help:
	@awk '/^## /{doc=substr($$0, 4); next} /^[a-z][a-z-]*:/{if (doc) {split($$0, t, ":"); printf "  %-12s %s\n", t[1], doc}; doc=""} !/^## /{if ($$0 !~ /^[a-z][a-z-]*:/) doc=""}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## Create .venv with the pinned runtime dependencies (requirements.txt).
install: $(VENV)/.installed

## .venv with the test and lint tools too (requirements-dev.txt).
install-dev: $(VENV)/.installed-dev

## Generate COUNT events (default 10,000) into OUTPUT_DIR (default ./data/raw).
generate: install
	OUTPUT_DIR=$(OUTPUT_DIR) $(PY) -m src.main --count $(COUNT)

## Measure the events in OUTPUT_DIR: report.html and report.json beside them.
report: install
	$(PY) -m src.main report --input $(OUTPUT_DIR)

RATE ?= 10
## Stream live traffic at RATE events/s (default 10) into Redis until Ctrl-C (see redis-up).
stream: install
	REDIS_PORT=$(REDIS_PORT) $(PY) -m src.main --mode continuous --output redis --rate $(RATE)

## A local Redis without Docker, where redis-server is installed (port REDIS_PORT, default 6379); fails if it does not start.
redis-up:
	@if [ -f $(REDIS_PIDFILE) ] && kill -0 "$$(cat $(REDIS_PIDFILE))" 2>/dev/null \
		&& grep -q redis-server /proc/$$(cat $(REDIS_PIDFILE))/cmdline 2>/dev/null; then \
		echo "redis-up: already running (pid $$(cat $(REDIS_PIDFILE)), port $(REDIS_PORT))"; exit 0; fi; \
	rm -f $(REDIS_PIDFILE); \
	redis-server --port $(REDIS_PORT) --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
		--pidfile $(REDIS_PIDFILE) --logfile $(REDIS_LOG) || exit 1; \
	for i in $$(seq 30); do [ -s $(REDIS_PIDFILE) ] && break; sleep 0.1; done; \
	pid=$$(cat $(REDIS_PIDFILE) 2>/dev/null); \
	for i in $$(seq 30); do [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null || break; \
		redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	if [ -z "$$pid" ] || ! kill -0 "$$pid" 2>/dev/null || ! grep -q redis-server /proc/$$pid/cmdline 2>/dev/null; then \
		echo "redis-up: redis-server did not start on port $(REDIS_PORT) (port taken? see $(REDIS_LOG)):" >&2; \
		tail -n 2 $(REDIS_LOG) >&2; rm -f $(REDIS_PIDFILE); exit 1; fi; \
	echo "redis-up: redis-server pid $$pid on port $(REDIS_PORT)"

## Stop the Redis that redis-up started (by its pidfile's PID; any other server on the port is left alone).
redis-down:
	@if [ ! -f $(REDIS_PIDFILE) ]; then echo "redis-down: no $(REDIS_PIDFILE): redis-up did not start a server on port $(REDIS_PORT)"; exit 0; fi; \
	pid=$$(cat $(REDIS_PIDFILE)); \
	if kill -0 "$$pid" 2>/dev/null && grep -q redis-server /proc/$$pid/cmdline 2>/dev/null; then \
		kill "$$pid"; for i in $$(seq 50); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done; \
		echo "redis-down: stopped redis-server pid $$pid"; \
	else echo "redis-down: pid $$pid is not running redis-server any more"; fi; \
	rm -f $(REDIS_PIDFILE)

## The default test suite (a few minutes on 2 cores).
test: install-dev
	$(PY) -m pytest

## Everything, slow checks included.
test-all: install-dev
	$(PY) -m pytest -m "slow or not slow"

## ruff and mypy on src, tests and scripts.
lint: install-dev
	$(PY) -m ruff check src tests scripts
	$(PY) -m ruff format --check src tests scripts
	$(PY) -m mypy src scripts

## Rewrite schemas/ from the event models.
schemas: install
	$(PY) scripts/write_schemas.py

## Median events/s and peak memory of 1M-event batch runs to JSONL.
bench: install
	$(PY) scripts/bench.py

## Median events/s of 1M-event batch runs into a local Redis (starts its own redis-server).
bench-redis: install
	$(PY) scripts/bench_redis.py

## Build the wheel into dist/ (hatchling builds it outside the checkout: no build/ or egg-info is left here).
wheel: install
	$(PY) -m pip wheel --quiet --no-deps -w dist .
	@ls dist/*.whl

## Remove the venv and the tools' caches.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

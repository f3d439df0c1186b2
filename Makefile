# SearchFlow Event Generator. `make generate` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUTPUT_DIR ?= ./data/raw
COUNT ?= 10000
REDIS_PORT ?= 6379

.PHONY: install install-dev generate report stream test test-all lint schemas bench bench-redis redis-up redis-down clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## Generate COUNT events (default 10,000) into OUTPUT_DIR (default ./data/raw).
generate: install
	OUTPUT_DIR=$(OUTPUT_DIR) $(PY) -m src.main --count $(COUNT)

## Measure the events in OUTPUT_DIR: report.html and report.json beside them.
report: install
	$(PY) -m src.main report --input $(OUTPUT_DIR)

## Stream live traffic at RATE events/s (default 10) into Redis until Ctrl-C (see redis-up).
RATE ?= 10
stream: install
	REDIS_PORT=$(REDIS_PORT) $(PY) -m src.main --mode continuous --output redis --rate $(RATE)

## A local Redis without Docker, where redis-server is installed (port REDIS_PORT, default 6379).
redis-up:
	redis-server --port $(REDIS_PORT) --daemonize yes --save "" --appendonly no \
		--pidfile /tmp/searchflow-redis-$(REDIS_PORT).pid --logfile /tmp/searchflow-redis-$(REDIS_PORT).log
	@redis-cli -p $(REDIS_PORT) ping

redis-down:
	redis-cli -p $(REDIS_PORT) shutdown nosave

## The default test suite (a few minutes on 2 cores).
test: install-dev
	$(PY) -m pytest

## Everything, slow checks included.
test-all: install-dev
	$(PY) -m pytest -m "slow or not slow"

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

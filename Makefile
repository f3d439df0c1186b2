# SearchFlow Event Generator. `make generate` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUTPUT_DIR ?= ./data/raw
COUNT ?= 10000

.PHONY: install install-dev generate test test-all lint schemas bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

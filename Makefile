# PRS Tasks — developer entry points. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system
UV := $(PYTHON) -m uv
VENV := .venv
BIN := $(VENV)/bin
export AMQP_URL ?= amqp://guest:guest@localhost:5672/
export PRS_DATA_DIR ?= $(CURDIR)/data
export PRS_ADMIN_API_KEY ?= dev-admin-key
export PRS_GATEWAY_PORT ?= 8000

.PHONY: install run test lint bench clean asyncapi

$(BIN)/.installed: pyproject.toml uv.lock shared/pyproject.toml services/*/pyproject.toml cli/pyproject.toml
	@# A Debian-managed Python refuses a plain pip install (PEP 668): then uv goes to the user site.
	@$(PYTHON) -m uv --version >/dev/null 2>&1 \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv
	$(UV) sync --all-packages --frozen --python $(PYTHON)
	@touch $@

install: $(BIN)/.installed

run: install  ## start all five services against AMQP_URL with embedded defaults
	@mkdir -p $(PRS_DATA_DIR)
	@echo "gateway: http://127.0.0.1:$(PRS_GATEWAY_PORT)  (API key: $$PRS_ADMIN_API_KEY; docs at /docs)"
	$(BIN)/honcho -f deploy/Procfile start

test: install  ## every test: unit, integration (real RabbitMQ and PostgreSQL), end-to-end
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install  ## side-by-side benchmarks against the baselines
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1) || echo "wrk not installed: the gateway section uses the Python load generator"
	$(BIN)/python -m bench

asyncapi: install  ## regenerate docs/asyncapi.json from the message catalog
	$(BIN)/python -m prs_shared.asyncapi docs/asyncapi.json

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache

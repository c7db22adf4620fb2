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

.PHONY: install run test test-cluster lint bench clean asyncapi browser nginx

$(BIN)/.installed: pyproject.toml uv.lock shared/pyproject.toml services/*/pyproject.toml cli/pyproject.toml clients/python/pyproject.toml
	@# A Debian-managed Python refuses a plain pip install (PEP 668): then uv goes to the user site.
	@$(PYTHON) -m uv --version >/dev/null 2>&1 \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv
	@# Bytecode written at install: with PYTHONDONTWRITEBYTECODE (set on many CI hosts) every
	@# process start would otherwise compile ~750 modules again (about 1.5 s of CPU each time).
	UV_COMPILE_BYTECODE=1 $(UV) sync --all-packages --frozen --python $(PYTHON)
	@$(BIN)/python -m compileall -q -j 0 shared services cli clients bench tests >/dev/null
	@touch $@

install: $(BIN)/.installed

run: install  ## start all five services against AMQP_URL with embedded defaults
	@mkdir -p $(PRS_DATA_DIR)
	@deploy/ensure-broker
	@echo "gateway: http://127.0.0.1:$(PRS_GATEWAY_PORT)  (API key: $$PRS_ADMIN_API_KEY; docs at /docs)"
	@# honcho pipes the services' output, so they cannot see the terminal: tell them (human,
	@# coloured logs), unless PRS_LOG_JSON or NO_COLOR says otherwise.
	@if [ -t 1 ]; then export PRS_LOG_JSON=$${PRS_LOG_JSON:-false} FORCE_COLOR=$${FORCE_COLOR:-1}; fi; \
	  exec $(BIN)/honcho -f deploy/Procfile start

browser:  ## Debian's chromium for the console's browser tests (apt retried while its lock is held)
	@test -x /usr/bin/chromium || for attempt in 1 2 3 4 5 6 7 8 9 10; do \
	  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 && break; \
	  echo "apt-get busy or failing (attempt $$attempt); retrying in 15s"; sleep 15; done
	@test -x /usr/bin/chromium || { echo "cannot install Debian's chromium (/usr/bin/chromium): the console's browser tests need it; run 'apt-get install -y chromium' as root" >&2; exit 1; }

# Debian's nginx, unpacked under .venv rather than installed: no service is started on this
# machine, and no root is needed once apt's package lists are current. tests/deploy runs the
# compose load balancer's configuration (deploy/nginx/gateway.conf) with it.
NGINX := $(VENV)/nginx/usr/sbin/nginx

nginx: $(NGINX)  ## Debian's nginx binary for the load balancer's tests (under .venv/nginx)

$(NGINX):
	@mkdir -p $(VENV)/nginx
	@for attempt in 1 2 3 4 5 6 7 8 9 10; do \
	  (cd $(VENV)/nginx && rm -f nginx_*.deb && { apt-get download -qq nginx 2>/dev/null \
	    || { apt-get update -qq && apt-get download -qq nginx; }; }) >/dev/null 2>&1 && break; \
	  echo "apt-get busy or failing (attempt $$attempt); retrying in 15s"; sleep 15; done
	@test -f $(VENV)/nginx/nginx_*.deb || { echo "cannot download Debian's nginx package: the load balancer's tests need it; run 'apt-get update' as root, then 'make nginx'" >&2; exit 1; }
	dpkg-deb -x $(VENV)/nginx/nginx_*.deb $(VENV)/nginx
	@rm -f $(VENV)/nginx/nginx_*.deb
	@touch $@

test: install browser nginx  ## every test: unit, integration (real RabbitMQ and PostgreSQL), end-to-end
	$(BIN)/pytest

# Not part of `make test`: it starts a three-node RabbitMQ of its own (ports 5681-5683).
test-cluster: install  ## the cluster tests: failover between nodes, quorum queues
	@test -x $${PRS_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}/rabbitmq-server || { echo "make test-cluster needs Debian's rabbitmq-server (3.10 or later): run 'apt-get install -y rabbitmq-server' as root" >&2; exit 1; }
	scripts/rabbitmq-cluster start
	PRS_CLUSTER_TESTS=1 $(BIN)/pytest tests/cluster; status=$$?; scripts/rabbitmq-cluster stop; exit $$status

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

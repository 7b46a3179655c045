# Daystar Integrations. `make run` starts everything with demo data; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: help install run worker lint format test test-sqlite test-postgres browser bench bench-api bench-callbacks bench-notify bench-dashboard clean

help:
	@echo "make run    - install, migrate, seed demo data, start web + worker + cron (http://127.0.0.1:5000)"
	@echo "make test   - lint, then the whole suite on SQLite and on PostgreSQL"
	@echo "make lint   - ruff check and ruff format --check"
	@echo "make bench  - seed 100,000 members and measure the portal's list pages"
	@echo "make bench-api - seed 100,000 members / 200,000 loans and measure the API under gunicorn"
	@echo "make bench-callbacks - post 5,500 M-Pesa callbacks to gunicorn + RQ workers; check each credits once"
	@echo "make bench-notify - 10,000 SMS through the gateway and 2 RQ workers vs straight to the sandbox; 100,000 reminders"
	@echo "make bench-dashboard - seed 100,000 members and a week of integration traffic; time the dashboard and each card"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	@scripts/run.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

browser:
	@scripts/ensure-chromium.sh

test: lint browser
	cd app/static/vendor && sha256sum --quiet -c SHA256SUMS
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: install
	@echo "== test suite on SQLite"
	env -u TEST_DATABASE_URL $(BIN)/pytest -q

test-postgres: install
	@if scripts/postgres-answers.sh "$$TEST_POSTGRES_URL"; then \
	  echo "== test suite on PostgreSQL"; \
	  TEST_DATABASE_URL="$$TEST_POSTGRES_URL" $(BIN)/pytest -q; \
	elif [ -n "$$CI" ]; then echo "PostgreSQL does not answer at $$TEST_POSTGRES_URL"; exit 1; \
	else echo "== PostgreSQL does not answer at $$TEST_POSTGRES_URL: skipped the PostgreSQL run"; fi

bench: install
	$(BIN)/python bench/portal.py

bench-api: install
	$(BIN)/python bench/api.py --both

bench-callbacks: install
	$(BIN)/python bench/callbacks.py --both

bench-notify: install
	$(BIN)/python bench/notify.py --both

bench-dashboard: install
	$(BIN)/python bench/dashboard.py --both

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

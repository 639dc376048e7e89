# Duraflow — the two front-door commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck layers unit bench bench-operator e2e-kind clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/duraflow demo

lint: install
	$(BIN)/ruff check duraflow operator tests bench

typecheck: install
	$(BIN)/mypy --strict

layers: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q

test: lint typecheck layers unit

bench: install
	$(BIN)/python bench/quick.py

# O1: N Orchestration CRs at once (API emulator, real PostgreSQL, one worker); CRS=10000 too.
bench-operator: install
	$(BIN)/python bench/operator.py --crs $(or $(CRS),1000)

e2e-kind:
	@echo "Kubernetes end-to-end tests arrive with the operator issue; they need Docker and kind."

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

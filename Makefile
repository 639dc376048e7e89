# Duraflow — the two front-door commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck layers unit bench bench-compare e2e-kind clean

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
	$(BIN)/ruff check duraflow tests bench

typecheck: install
	$(BIN)/mypy --strict duraflow

layers: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q

test: lint typecheck layers unit

# Benchmarks (bench/README.md). BENCH_ARGS passes options through, e.g. BENCH_ARGS=--quick.
BENCH_ARGS ?=

$(VENV)/.bench-stamp: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@

$(VENV)/.compare-stamp: $(VENV)/.bench-stamp
	$(BIN)/python -m pip install --quiet -e '.[bench,compare]'
	@touch $@

bench: $(VENV)/.bench-stamp
	$(BIN)/python -m bench --engines duraflow --backends sqlite,postgres $(BENCH_ARGS)

bench-compare: $(VENV)/.compare-stamp
	$(BIN)/python -m bench --compare --backends postgres,sqlite $(BENCH_ARGS)

e2e-kind:
	@echo "Kubernetes end-to-end tests arrive with the operator issue; they need Docker and kind."

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

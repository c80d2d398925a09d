# `make demo`: the embedded default job.  `make test`: the whole test suite.  Both set up .venv first, once.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := ccol_policy

.PHONY: demo test lint bench clean-venv

$(STAMP): requirements.txt ccol_policy/setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ccol demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_policy.py

clean-venv:
	rm -rf $(VENV)

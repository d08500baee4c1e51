# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo

.PHONY: install demo test test-slow test-ray mutate lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/deepq train --env CartPole-v1 --out $(DEMO_DIR) --force

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/pytest -n 2 -q

MUTATE_STAMP := $(VENV)/.mutate-installed
$(MUTATE_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev,mutate]"
	touch $(MUTATE_STAMP)

# A full pass from scratch, module by module (tools/mutate.py), then the per-module table in
# docs/mutation.md; fails below a 90% kill rate.
mutate: $(MUTATE_STAMP)
	rm -rf mutants
	$(BIN)/python tools/mutate.py
	$(BIN)/python tools/mutation_report.py

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow -p no:cacheprovider -o addopts=""

# Grids, a dead worker node and a killed driver on a two-node Ray cluster started here.
test-ray: $(STAMP)
	$(BIN)/pytest -q -m ray -p no:cacheprovider -o addopts=""

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools

clean:
	rm -rf $(VENV) runs mutants .pytest_cache .ruff_cache

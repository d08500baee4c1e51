# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo

.PHONY: install demo test test-slow mutate lint clean

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

# A full pass from scratch (about an hour on 2 cores), then the per-module table in
# docs/mutation.md; fails below a 90% kill rate. JAX's persistent cache lets the mutants share
# the compiled code of every function they leave unchanged.
mutate: $(MUTATE_STAMP)
	rm -rf mutants
	JAX_COMPILATION_CACHE_DIR=$(CURDIR)/mutants/.jax-cache \
	JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0 \
		$(BIN)/mutmut run
	$(BIN)/python tools/mutation_report.py

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow -p no:cacheprovider -o addopts=""

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools

clean:
	rm -rf $(VENV) runs mutants .pytest_cache .ruff_cache

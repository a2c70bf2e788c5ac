# Two commands do all set-up: `make demo` and `make test`. Each creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MUTATE_STAMP := $(VENV)/.installed-mutate
# The CPU wheel of torch; a GPU user can override, e.g. `make TORCH_SPEC=torch==2.13.0 TORCH_PIP_ARGS= test`.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?= $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu)
PYTEST_ARGS ?=

.PHONY: demo test fuzz lint typecheck docs bench mutate clean

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), f"linearcast needs Python >= 3.11, found {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e '.[dev,onnx,docs]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m linearcast demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools results
	$(BIN)/ruff format --check src tests benchmarks tools results
	$(BIN)/lint-imports  # the layering contracts in pyproject.toml (docs/architecture.md)

typecheck: $(STAMP)
	$(BIN)/mypy

# The site (guides + API reference from the docstrings) into build/site; --strict turns every
# warning (a page missing from the nav, a broken anchor, a docstring mkdocstrings cannot parse)
# into a failure. Links to files outside docs/ are checked by tests/test_docs_links.py.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: lint typecheck docs
	$(BIN)/python -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

# The fuzz-marked properties with many more examples (make test runs them bounded): readers,
# pickles, checkpoints. FUZZ_EXAMPLES per property; about 20 min on 2 cores at the default.
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	LINEARCAST_HYPOTHESIS_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -n 2 -q -m fuzz $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/attention.py --repeats 3

# Mutation testing (docs/testing.md): about an hour on 2 cores, not part of `make test`.
# MUTATE_ARGS e.g. `--groups metrics --minutes 5`; results in build/mutate/summary.md.
$(MUTATE_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,mutate]'
	@touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	nice -n 10 $(BIN)/python tools/mutate.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build/mutate mutants

# The two commands of the README: `make demo` and `make test`. Everything they need
# is installed here, into .venv, from a clean clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test serve bench clean

$(STAMP): pyproject.toml sdks/python/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "byourside needs Python 3.11 or newer (found %s)" % sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]" -e sdks/python
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/byourside demo

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: setup
	$(BIN)/byourside serve

bench: setup
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .byourside .pytest_cache

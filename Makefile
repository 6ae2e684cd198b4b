# Two commands do everything on a fresh machine with Python 3.11+:
#   make demo   run the whole course headless (fast mode, phantoms) into runs/demo/
#   make test   run the test suite (unit tests + papermill smoke runs of every notebook)
# Each creates .venv and installs the course into it when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONWARNINGS ?= ignore::DeprecationWarning

# The Colab profile: a second virtualenv held to Google Colab's pinned runtime packages.
COLAB_CONSTRAINTS ?= ../shared/colab/colab-core-constraints.txt
COLAB_VENV ?= .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
# Colab runs Python 3.13; use it when this machine has it (pyenv included), else $(PYTHON).
COLAB_PYTHON ?= $(or $(shell command -v python3.13 >/dev/null 2>&1 && python3.13 -c '' 2>/dev/null && echo python3.13),$(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13)),$(PYTHON))

.PHONY: install demo test test-fast test-colab lab app bench lint format clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(BIN)/nbstripout --install --attributes .gitattributes || true; fi
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m course_utils demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit tests and fast papermill runs of every notebook inside Colab's pins (the students' runtime).
$(COLAB_STAMP): pyproject.toml $(wildcard $(COLAB_CONSTRAINTS))
	@test -f "$(COLAB_CONSTRAINTS)" || { echo "No Colab constraints file at $(COLAB_CONSTRAINTS); set COLAB_CONSTRAINTS=FILE"; exit 2; }
	@test -x $(COLAB_VENV)/bin/python || $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet -c "$(COLAB_CONSTRAINTS)" -e '.[dev]'
	@touch $(COLAB_STAMP)

test-colab: $(COLAB_STAMP)
	BTMRI_COLAB_CONSTRAINTS="$(abspath $(COLAB_CONSTRAINTS))" \
	$(COLAB_VENV)/bin/python -m pytest -m "not browser and not realdata and not standalone" -p no:cacheprovider

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not notebook and not slow and not browser"

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	cd notebooks && ../$(BIN)/jupyter lab

# The mini-app alone (notebooks/app.ipynb) as a web page; models from `make demo` unless
# BTMRI_ARTIFACTS_DIR is set.
app: $(STAMP)
	BTMRI_ARTIFACTS_DIR="$${BTMRI_ARTIFACTS_DIR:-$(CURDIR)/runs/demo/artifacts}" \
	BTMRI_FAST_MODE="$${BTMRI_FAST_MODE:-1}" \
	$(BIN)/voila notebooks/app.ipynb --no-browser --port 8866

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check course_utils tests benchmarks
	$(BIN)/ruff format --check course_utils tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format course_utils tests benchmarks
	$(BIN)/ruff check --fix course_utils tests benchmarks

clean:
	rm -rf runs .pytest_cache .ruff_cache $(COLAB_VENV)

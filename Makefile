# Two entry points (see README): `make all` runs every notebook, `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= full
export SENTIMENT_DATA_DIR ?=

.PHONY: all setup test test-unit test-notebooks clean

all: setup
	$(PY) -m helpers.run --profile $(PROFILE)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls gigabytes of CUDA wheels
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# Unit tests, then every notebook executed under nbval with the small smoke profile.
test: setup
	SENTIMENT_PROFILE=smoke SENTIMENT_RESULTS_DIR=$${SENTIMENT_RESULTS_DIR:-$$(mktemp -d)} \
	  $(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info

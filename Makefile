# Entry points (see README): `make lab` opens the notebooks in JupyterLab, `make all` runs every notebook,
# `make test` runs the tests.
# The course is tested on Python 3.11-3.12 (pyproject's requires-python, environment.yml and the README say
# the same): python3.11 (the reference runs' version) or else python3.12, the first on the PATH that runs
# (a pyenv shim may not); `make PYTHON=/path/to/python3.x` picks another.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for name in python3.11 python3.12; do $$name -c '' 2>/dev/null && { echo $$name; break; }; done)
endif
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= full
export SENTIMENT_DATA_DIR ?=

.PHONY: all setup lab deploy-deps test serve bench-deployment clean

# full: results/ and deployment/models/ (the reference run); smoke: results-smoke/ (git-ignored)
all: setup
	$(PY) -m helpers.run --profile $(PROFILE)

# torch: on a normal Linux machine, `pip install torch==2.13.0` from the public index (PyPI) is the
# CUDA build, with gigabytes of nvidia packages; only the machines this course was built on have a
# local CPU wheel. On a CPU-only machine add the CPU wheel index:
#     make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Default: no index change (pip's own configuration, which works offline where wheels are local).
TORCH_INDEX ?=
PIP_INSTALL := $(PY) -m pip install -q -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "error: no python3.12 or python3.11 on the PATH: the course is tested on" \
	  "Python 3.11-3.12 (install one, or run make PYTHON=/path/to/python3.12)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else "error: $(PYTHON)" \
	  " is Python %d.%d; the course is tested on Python 3.11-3.12 (make PYTHON=/path/to/python3.12)" % sys.version_info[:2])'
	$(PYTHON) -m venv $(VENV)
	# torch first, at the reference runs' version (constraints.txt pins every package)
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# JupyterLab on the notebooks: the `lab` extra (jupyterlab) into .venv, once, then `jupyter lab notebooks/`.
$(VENV)/.lab: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[lab]"
	touch $@

lab: $(VENV)/.lab
	$(VENV)/bin/jupyter lab notebooks/

# Serverless Framework v3 and its Python requirements plugin (deployment/package-lock.json), for
# deploying and for the packaging test. Without npm the packaging test is skipped, not failed.
deploy-deps:
	@if command -v npm >/dev/null 2>&1; then \
	  if [ ! -f deployment/node_modules/.package-lock.json ] || [ deployment/package-lock.json -nt deployment/node_modules/.package-lock.json ]; then \
	    cd deployment && npm ci --no-audit --no-fund; \
	  fi; \
	else echo "npm not found: the deployment packaging test will be skipped"; fi

# Unit tests, then every notebook executed under nbval with the small smoke profile.
test: setup deploy-deps
	SENTIMENT_PROFILE=smoke SENTIMENT_RESULTS_DIR=$${SENTIMENT_RESULTS_DIR:-$$(mktemp -d)} \
	  $(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider

# The website and both API routes on http://127.0.0.1:$(PORT) (8000 unless PORT=...), through the Lambda handlers.
PORT ?= 8000
serve: setup
	$(PY) -m deployment.local --port $(PORT)

# ONNX Runtime handler vs torch eager: cold start, latency, package size, load test.
bench-deployment: setup deploy-deps
	$(PY) benchmarks/bench_deployment.py

clean:
	rm -rf $(VENV) build *.egg-info deployment/.serverless results-smoke

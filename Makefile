# Two entry points (see README): `make all` runs every notebook, `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= full
export SENTIMENT_DATA_DIR ?=

.PHONY: all setup deploy-deps test serve bench-deployment clean

all: setup
	$(PY) -m helpers.run --profile $(PROFILE)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls gigabytes of CUDA wheels
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

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

# The website and both API routes on http://127.0.0.1:8000, through the Lambda handlers.
serve: setup
	$(PY) -m deployment.local

# ONNX Runtime handler vs torch eager: cold start, latency, package size, load test.
bench-deployment: setup deploy-deps
	$(PY) benchmarks/bench_deployment.py

clean:
	rm -rf $(VENV) build *.egg-info deployment/.serverless

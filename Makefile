# Two commands on a fresh machine (Python 3.11+ and make): `make demo` and `make test`.
#
# Both install exactly what uv.lock pins, so they give the same environment on any day; the
# pins move only when someone runs `make lock` and commits the result. uv itself is installed
# from PyPI with pip, at the version below, into .venv (the only thing pip installs).
PYTHON ?= python3
UV_VERSION := 0.13.9

VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_STAMP := $(VENV)/.uv-$(UV_VERSION)
STAMP := $(VENV)/.installed
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
LOWEST_VENV := .venv-lowest
LATEST_VENV := .venv-latest
# The other interpreters the classifiers name: a pyenv install if there is one, else PATH.
# Override with PYTHON312=/path/to/python3.12 (or PYTHON313=...).
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12.*/bin/python3.12 \
	/root/.pyenv/versions/3.12.*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12) \
	python3.12)
PYTHON313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python3.13 \
	/root/.pyenv/versions/3.13.*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13) \
	python3.13)

# uv finds Python on this machine (never downloads one) and says nothing unless asked.
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
unexport VIRTUAL_ENV

.PHONY: install demo test lint typecheck pytest docs lock test-lowest test-latest \
	test-py312 test-py313 dist bench sizes clean

$(UV_STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		(echo "jwkguard needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	touch $(UV_STAMP)

# The development environment: every extra and the dev group, exactly as locked.
$(STAMP): pyproject.toml uv.lock $(UV_STAMP)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --all-extras --group dev
	touch $(STAMP)

install: $(STAMP)

# The demo's own environment: the `demo` extra only (no linters, browsers or docs tools).
$(DEMO_STAMP): pyproject.toml uv.lock $(UV_STAMP)
	UV_PROJECT_ENVIRONMENT=$(DEMO_VENV) $(UV) sync --locked --no-dev --extra demo \
		--python $(BIN)/python
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/jwkguard demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects no test; like every non-zero status, make fails on it.
pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest docs

docs: $(STAMP)
	@if [ -f mkdocs.yml ]; then $(BIN)/mkdocs build --strict --quiet --site-dir build/site; fi

# Raise the pins on purpose: newest versions the ranges in pyproject.toml allow.
lock: $(UV_STAMP)
	$(UV) lock --upgrade
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --all-extras --group dev
	touch $(STAMP)

# The suite against the lowest versions pyproject.toml declares (each direct dependency at its
# lower bound), in its own venv; uv.lock is neither read nor written.
test-lowest: $(UV_STAMP)
	$(UV) venv --quiet --clear --python $(BIN)/python $(LOWEST_VENV)
	$(UV) pip install --quiet --python $(LOWEST_VENV)/bin/python --resolution lowest-direct \
		-e '.[all]' --group dev
	$(LOWEST_VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The suite and the type check against the newest versions allowed today (no lock).
test-latest: $(UV_STAMP)
	$(UV) venv --quiet --clear --python $(BIN)/python $(LATEST_VENV)
	$(UV) pip install --quiet --python $(LATEST_VENV)/bin/python --upgrade \
		-e '.[all]' --group dev
	$(LATEST_VENV)/bin/mypy
	$(LATEST_VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The locked suite under Python 3.12 or 3.13, in .venv-312 / .venv-313 (uv.lock as `make test`
# reads it). A missing interpreter fails here: uv never downloads one.
test-py312 test-py313: test-py%: $(UV_STAMP)
	UV_PROJECT_ENVIRONMENT=.venv-$* $(UV) sync --locked --all-extras --group dev \
		--python $(PYTHON$*)
	.venv-$*/bin/python -c 'import sys; "%d%d" % sys.version_info[:2] == "$*" or sys.exit(sys.version)'
	.venv-$*/bin/python -m pytest $(PYTEST_ARGS)

# The wheel and the sdist, in dist/.
dist: $(UV_STAMP)
	rm -rf dist
	$(UV) build --quiet --out-dir dist

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Installed size of each environment there is.
sizes:
	@for venv in $(VENV) $(DEMO_VENV) $(LOWEST_VENV) $(LATEST_VENV) .venv-312 .venv-313; do \
		if [ -d $$venv ]; then du -sh $$venv; fi; done

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(LOWEST_VENV) $(LATEST_VENV) .venv-312 .venv-313 build dist \
		.pytest_cache .mypy_cache .ruff_cache

# Everything a newcomer needs: `make install && make demo`, then `make test` and `make test-real`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# One version: gha_scalesets/__init__.py's __version__ (pyproject reads it too).
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' gha_scalesets/__init__.py)
# `make image` / `make runner-image` tags; name your registry: make image IMAGE=ghcr.io/acme/...
IMAGE        ?= gha-scalesets-listener:$(VERSION)
RUNNER_IMAGE ?= gha-scalesets-runner:$(VERSION)
TOOLBIN := $(or $(GHA_TOOLCHAIN_HOME),$(HOME)/.cache/gha-scalesets/toolchain)/bin

.PHONY: install test test-real toolchain lint lint-python format demo bench bench-ci chaos clean \
	dist image runner-image

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Python (ruff, mypy) and the GitHub workflows (actionlint, built from the Go module proxy once).
lint: lint-python
	toolchain/build.sh actionlint
	$(TOOLBIN)/actionlint

# mypy: strict over the whole package (pyproject's [tool.mypy]); incremental in .mypy_cache.
lint-python: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m toolchain.typecheck

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Needs only Python: the workflows are linted by `make lint` (and CI).
test: install lint-python
	$(PY) -m pytest -q

# The real Pulumi engine, Kubernetes control plane and plugins, built once into ~/.cache.
toolchain:
	toolchain/build.sh

# The tiers that need the real toolchain (tests/engine, tests/real_k8s) and the image tier
# (tests/image: buildah and mmdebstrap, installed with apt-get when missing); they never skip.
test-real: install toolchain
	$(PY) -m pytest -q --real

# sdist and wheel into dist/, checked as the package index will render them.
dist: install
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*

# The listener image without a Docker daemon (buildah), and the ECS runner image
# (RUNNER_FROM: a mirror URL or a directory of images/runner holding the runner tarball).
image: install
	$(PY) -m toolchain.images listener --tag $(IMAGE)

runner-image: install
	$(PY) -m toolchain.images runner --tag $(RUNNER_IMAGE) $(if $(RUNNER_FROM),--from $(RUNNER_FROM))

demo: install
	$(PY) -m gha_scalesets.listener.demo

# The full benchmarks, then the table of docs/benchmarks.md regenerated from their results.
bench: install
	$(PY) -m benchmarks
	$(PY) -m benchmarks.report

chaos: install
	$(PY) -m benchmarks.chaos

bench-ci: install
	$(PY) -m pytest -q tests/benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache dist

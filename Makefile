# Everything a newcomer needs: `make install && make demo`, then `make test` and `make test-real`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test test-real toolchain lint format demo bench bench-ci chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install lint
	$(PY) -m pytest -q

# The real Pulumi engine, Kubernetes control plane and plugins, built once into ~/.cache.
toolchain:
	toolchain/build.sh

# The tiers that need the real toolchain (tests/engine, tests/real_k8s); they never skip.
test-real: install toolchain
	$(PY) -m pytest -q --real

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
	rm -rf $(VENV) .pytest_cache .ruff_cache

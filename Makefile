# The two commands of the README: `make demo` (the main job) and `make test`.
# Both set up what is missing first: .venv/ (pinned Python deps, package editable) and
# node_modules/ (Anvil, the WebAssembly solc and the headless Chromium of the status-page
# test, pinned in package.json).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean artifacts

setup: $(VENV)/.installed node_modules/.installed
	@$(BIN)/zkml-oracle doctor

$(VENV)/.installed: pyproject.toml requirements.lock requirements-ray.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-ray.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# `npm install`, not `npm ci`: a lockfile made on one platform lacks the others' optional
# packages. Never --omit=optional: Anvil's native binary is an optional dependency.
node_modules/.installed: package.json
	npm install --no-audit --no-fund --no-package-lock
	touch $@

demo: setup
	$(BIN)/zkml-oracle demo

# The compiled contracts the package ships (zkml_oracle/artifacts/): run after changing any
# contract; tests/test_artifacts.py fails until they match contracts/ again.
artifacts: $(VENV)/.installed node_modules/.installed
	$(BIN)/python scripts/artifacts.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two pytest workers (pytest-xdist): the suite waits on chains, subprocesses and key loading
# for much of its time, so one process keeps about one of the 2 cores busy. `--dist loadfile`
# keeps each test module on one worker, so a session circuit is built at most once per worker.
TEST_WORKERS ?= 2

test: setup lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench: setup
	$(BIN)/python benchmarks/prove_overhead.py
	$(BIN)/python benchmarks/verifier_gas.py
	$(BIN)/python benchmarks/oracle_gas.py
	$(BIN)/python benchmarks/judge_gas.py
	$(BIN)/python benchmarks/batch_gas.py
	$(BIN)/python benchmarks/batch_prove.py
	$(BIN)/python benchmarks/relayer.py
	$(BIN)/python benchmarks/privacy_cost.py
	$(BIN)/python benchmarks/relayer_scale.py --out benchmarks/results/relayer_scale.json
	$(BIN)/python benchmarks/queue_sim.py
	$(BIN)/python benchmarks/conformance.py
	$(BIN)/python benchmarks/evaluation.py --sizes 256:256,1024:256
	$(BIN)/python benchmarks/plots.py

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache

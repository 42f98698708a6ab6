# Two commands do everything on a fresh machine: `make run` and `make test`.
# Everything they need (a venv with the package, the Go-built control plane) is
# set up by the targets below, and skipped when already current.

VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test unit e2e lint format crds cluster tools image venv bench clean

# Parallel pytest workers (README, Development): e2e tests mostly wait, so more than cores.
PYTEST_WORKERS ?= 6
export PYTEST_WORKERS

run: $(INSTALLED) cluster  ## the operator end to end on the local control plane
	$(BIN)/credsmith dev

test: $(INSTALLED) tools  ## every test: unit and e2e, in parallel (tests/run-tests.sh)
	PYTEST=$(BIN)/pytest tests/run-tests.sh

unit: $(INSTALLED)  ## tests that need no cluster
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not e2e"

e2e: $(INSTALLED) tools
	PYTEST=$(BIN)/pytest tests/run-tests.sh e2e

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

crds: $(INSTALLED)  ## regenerate crds/ from the API models, the chart's and kustomize's copies, and the Argo CD health check's copies
	$(BIN)/credsmith crds --output-dir crds
	cp crds/*.yaml charts/credsmith/crds/
	cp crds/*.yaml deploy/crds/
	$(BIN)/python deploy/argocd/generate.py

bench: $(INSTALLED) cluster  ## benchmarks (bench/README.md); BENCH_ARGS=--quick for a short run
	$(BIN)/python bench/run.py $(BENCH_ARGS)

cluster:  ## build the control plane and kwok, what `make run` needs (skipped when current)
	tests/cluster/build.sh --dev >/dev/null

tools:  ## the control plane and the tools the tests run: helm, toxiproxy, kstatus, verify-go, promtool, Hydra, Keycloak
	tests/cluster/build.sh >/dev/null
	tests/cluster/keycloak.sh >/dev/null

# The operator image from the Dockerfile, built with buildah (no Docker engine) on a
# Debian base made by debootstrap; skipped when current. Needs root, buildah and
# debootstrap (apt-get install buildah debootstrap). IMAGE names the result.
IMAGE ?= localhost/credsmith:dev
image:
	CREDSMITH_IMAGE=$(IMAGE) tests/image/build.sh

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml verifier/pyproject.toml plugin/pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# credsmith-verify is not on PyPI; plugin/ is `kubectl credsmith` (kubectl-credsmith)
	$(BIN)/pip install --quiet -e ./verifier -e ./plugin -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) .dev .mypy_cache .ruff_cache .pytest_cache

# Set-up and checks. `make demo` and `make test` work on a fresh machine (Python 3.11+, Go).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint unit e2e-binaries e2e bench figures paper-results clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,train]'

demo: setup
	$(BIN)/ladts demo

lint: setup
	$(BIN)/ruff check policy operator tests e2e benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/python -m pytest tests -q

# The evaluation tables and plots in docs/results (README "Results").
figures: setup
	$(BIN)/ladts evaluate --scenario paper --episodes 2 --no-progress \
		--json docs/results/paper.json --plot docs/results/paper.png
	$(BIN)/ladts evaluate --scenario k8s-edge --episodes 4 --no-progress \
		--json docs/results/k8s-edge.json --plot docs/results/k8s-edge.png

# The trained-policy table, learning curves and summaries in docs/results.md (long: trains
# every algorithm on several seeds; resumes where it stopped, outputs in runs/paper-results).
paper-results: setup
	$(BIN)/python benchmarks/paper_results.py --seeds 5 --episodes 60 \
		--variant 'lad-ts-extended@1=--algo lad-ts --state extended --lanes 20' \
		--variant 'lad-ts-eps-softmax@5=--algo lad-ts --eps-softmax' \
		--variant 'd2sac-eps-softmax@5=--algo d2sac --eps-softmax'

# Speed figures at a small size, so the scripts cannot rot (full-size runs: README, docs/).
bench: setup e2e-binaries
	$(BIN)/python benchmarks/sim_throughput.py --episodes 2
	$(BIN)/python benchmarks/train_speed.py --episodes 2 --lanes 2
	$(BIN)/python -m e2e.bench.default_scheduler --scenario k8s-edge --horizon-s 120 \
		--time-scale 20 --seed 0 --out runs/bench/ci

# kube-apiserver, kube-scheduler, kine, kwok, helm (Go, from source) and Prometheus (Debian),
# into a cache outside the repository; seconds when already built (e2e/README.md).
e2e-binaries:
	e2e/controlplane/build.sh

e2e: setup e2e-binaries
	LADTS_E2E_REQUIRED=1 $(BIN)/python -m pytest e2e -q

test: lint e2e-binaries bench
	LADTS_E2E_REQUIRED=1 $(BIN)/python -m pytest tests e2e -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache ladts-demo

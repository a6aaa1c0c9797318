# Set-up and checks. `make demo` and `make test` work on a fresh machine (Python 3.11+, Go).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install setup demo test lint unit e2e-binaries e2e bench figures paper-results cluster-results bundled-policy clean manifests image-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The demo needs only the core install (no torch, no test tools).
install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,train]'

demo: install
	$(BIN)/ladts demo

lint: setup
	$(BIN)/ruff check policy operator tests e2e benchmarks docker
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

unit: setup
	$(BIN)/python -m pytest tests -q

# The evaluation tables and plots in docs/results (README "Results").
figures: setup
	$(BIN)/ladts evaluate --scenario paper --episodes 2 --no-progress \
		--json docs/results/paper.json --plot docs/results/paper.png
	$(BIN)/ladts evaluate --scenario k8s-edge --seeds 10000-10004 --no-progress \
		--json docs/results/k8s-edge.json --plot docs/results/k8s-edge.png

# The trained-policy table, learning curves and summaries in docs/results.md (long: trains
# every algorithm on several seeds; resumes where it stopped, outputs in runs/paper-results).
paper-results: setup
	$(BIN)/python benchmarks/paper_results.py --seeds 5 --episodes 60 \
		--variant 'lad-ts-extended@1=--algo lad-ts --state extended --lanes 20' \
		--variant 'lad-ts-eps-softmax@5=--algo lad-ts --eps-softmax' \
		--variant 'd2sac-eps-softmax@5=--algo d2sac --eps-softmax'

# The bundled default policy, ladts_policy/bundled/lad-ts.onnx (served by `ladts serve` and the
# chart, `lad-ts` in `ladts evaluate`): train the cluster LAD-TS actor, export it. The recipe
# (seed, trainer options: imitation of residency-greedy by default) is the cluster trainer's
# (docs/training.md); override BUNDLED_TRAIN_ARGS.
BUNDLED_TRAIN_ARGS ?= --scenario k8s-edge --algo lad-ts --imitate residency-greedy --seed 0
BUNDLED_CREATED ?= 2026-11-30T00:00:00Z
bundled-policy: setup
	$(BIN)/ladts train $(BUNDLED_TRAIN_ARGS) --out runs/bundled-policy
	$(BIN)/ladts export runs/bundled-policy/final.pt --out policy/src/ladts_policy/bundled/lad-ts.onnx \
		--created $(BUNDLED_CREATED)

# The k8s-edge tables of docs/results.md: greedy, residency-greedy and the trained cluster
# policies (every training seed's ONNX file) on every k8s-edge preset and the held-out clusters
# of benchmarks/scenarios/heldout/, held-out seeds 10000..10004 (benchmarks/cluster_results.py).
# Run directories of `ladts train --scenario k8s-edge` (docs/training.md); D2SAC from its
# checkpoints (its ONNX export would start from the latent memory, not N(0, I)).
CLUSTER_LEARNED ?= --learned 'lad-ts=runs/lad-ts-bc-s*/final.onnx' \
	--learned 'lad-ts-bundled=policy/src/ladts_policy/bundled/lad-ts.onnx' \
	--learned 'lad-ts-no-imitation=runs/lad-ts-s*/final.onnx' \
	--learned 'd2sac=runs/d2sac-bc-s*/final.pt'
# The committed run: the presets over their hour, the held-out clusters and k8s-edge-200
# over 600 s (the shared 2-core machine).
CLUSTER_RESULTS_ARGS ?= --horizon-s 600 --keep-horizon k8s-edge,k8s-edge-bursty,k8s-edge-busy \
	--no-progress
cluster-results: setup
	$(BIN)/python benchmarks/cluster_results.py $(CLUSTER_LEARNED) $(CLUSTER_RESULTS_ARGS)

# Speed figures at a small size, so the scripts cannot rot (full-size runs: README, docs/).
bench: setup e2e-binaries
	$(BIN)/python benchmarks/sim_throughput.py --episodes 2
	$(BIN)/ladts bench extender --nodes 20,100 --duration 1
	$(BIN)/python benchmarks/sim_throughput.py --scenario k8s-edge --envs 4 --horizon-s 120
	$(BIN)/python benchmarks/sim_throughput.py --scenario k8s-edge --envs 8 --horizon-s 60 --encoded
	$(BIN)/python benchmarks/train_speed.py --episodes 2 --lanes 2 --cluster-decisions 200
	$(BIN)/python benchmarks/onnx_latency.py --calls 50
	$(BIN)/python benchmarks/bundled_popularity_probe.py --seed 10001
	$(BIN)/python benchmarks/prioritize_phases.py --nodes 50 --decisions 120
	$(BIN)/python benchmarks/gc_pauses.py --nodes 50 --decisions 120
	$(BIN)/python benchmarks/onnx_graph_costs.py --nodes 50 --rounds 1 --calls 20
	$(BIN)/python -m e2e.bench.default_scheduler --scenario k8s-edge --horizon-s 120 \
		--time-scale 10 --seeds 0 --out runs/bench/ci
	$(BIN)/python -m e2e.bench.end_to_end --scenario k8s-edge --scheduler default,ladts \
		--horizon-s 15 --seeds 0 --out runs/bench/ci-end-to-end
	$(BIN)/python -m e2e.bench.capacity --scenario k8s-edge --scheduler default,ladts \
		--rates 0.5 --horizon-s 15 --seeds 0 --out runs/bench/ci-capacity

# kube-apiserver, kube-scheduler, kine, kwok, helm (Go, from source) and Prometheus (Debian),
# into a cache outside the repository; seconds when already built (e2e/README.md). helm is
# named because build.sh builds it only on request, and the chart tests run in `make e2e/test`.
e2e-binaries:
	e2e/controlplane/build.sh prometheus kine kubernetes kwok helm

e2e: setup e2e-binaries
	LADTS_E2E_REQUIRED=1 $(BIN)/python -m pytest e2e -q

# manifests/ladts-scheduler.yaml from helm/ladts-scheduler (e2e/test_chart.py fails when stale).
manifests: setup e2e-binaries
	$(BIN)/python -m e2e.controlplane.chart --write

# The runtime image's Python environment without Docker: clean venv, no torch, size per package.
image-check: setup
	$(BIN)/python docker/check_runtime_env.py

test: lint e2e-binaries bench image-check
	LADTS_E2E_REQUIRED=1 $(BIN)/python -m pytest tests e2e -q

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache ladts-demo

# wattcast — build, test, benchmark. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Caches live outside the checkout so fresh clones (and CI) reuse them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/wattcast/target
CARGO ?= cargo
WATTCAST := $(CARGO_TARGET_DIR)/release/wattcast

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every crate, binary, test and bench
	$(CARGO) build --workspace --all-targets

.PHONY: test
test: test-env lint crd-check ## Start the test services, then run every test (lint, CRD, unit, property, integration)
	$(CARGO) test --workspace --no-fail-fast

.PHONY: test-unit
test-unit: ## The tests that need no services (unit, property, windowing conformance, CLI, ONNX, CRD types, reconcile on a fake API server, docs links): no test env, about a minute warm
	$(CARGO) test --workspace --no-fail-fast --lib --bins --test windowing_properties \
	  --test windowing_conformance --test dataset_cli --test model_onnx --test model_keras --test samples_are_fresh \
	  --test local_images --test parsers_fuzz --test reliability_doc --test reconcile --test docs_links

.PHONY: test-faults
test-faults: test-env release ## The fault matrix (local mode): each fault injected mid-run into real processes and services; fails if a reading is lost or duplicated (about 12 minutes)
	$(WATTCAST) faults run --out $${OUT:-/tmp/wattcast-faults.json} $${FAULTS:+--only $$FAULTS}

.PHONY: reliability-table
reliability-table: ## Regenerate docs/reliability.md's table from the fault matrix's JSON (docs/reliability/faults-local.json)
	$(CARGO) run -q --release -p wattcast --bin wattcast -- faults table docs/reliability/faults-local.json --into docs/reliability.md

.PHONY: test-env
test-env: ## Install and start the real services the tests use (idempotent; writes test-env/.env)
	test-env/up

.PHONY: test-env-down
test-env-down: ## Stop the test services (data and downloads stay cached)
	test-env/down

.PHONY: lint
lint: ## cargo fmt --check, clippy with warnings as errors, and shellcheck over every script
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@command -v shellcheck >/dev/null || { echo "shellcheck is missing: test-env/up installs it (or apt-get install shellcheck)"; exit 1; }
	shellcheck -a -x -S style $$(git ls-files '*.sh' .ci/run test-env/up test-env/down test-env/pause-postgres test-env/fault deploy/local/images/pulsar)

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: bench
bench: ## Criterion benchmarks (windowing throughput, CSV parsing, model training and forecasting)
	$(CARGO) bench -p wattcast --bench windowing --bench csv_parse --bench model

.PHONY: bench-model
bench-model: ## Criterion benchmarks of the model only (training the original recipe, a 60-step forecast)
	$(CARGO) bench -p wattcast --bench model

.PHONY: bench-lstm
bench-lstm: ## Criterion benchmark of training's LSTM sequence operation alone (one half batch, forwards and backwards)
	$(CARGO) bench -p wattcast-lstm --bench sequence

# The Keras side of the model comparisons: the original recipe in pinned tensorflow-cpu + tf2onnx.
KERAS_VENV := $(HOME)/.cache/wattcast/keras-venv
KERAS_PYTHON := $(KERAS_VENV)/bin/python
# The original project's reference CSVs (not in this repository; see docs/contributing/testing.md).
REFERENCE ?= $(or $(WATTCAST_THESIS_DATA),../shared/reference/thesis-data)

$(KERAS_PYTHON): tools/keras/requirements.txt
	python3 -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/pip install -q -r tools/keras/requirements.txt
	touch $(KERAS_PYTHON)

.PHONY: keras-model
keras-model: $(KERAS_PYTHON) ## Re-make the Keras/tf2onnx fixture (cli/tests/fixtures/keras-lstm): train in Keras, export, record Keras's forecast
	$(KERAS_PYTHON) tools/keras/recipe.py export --csv $(REFERENCE)/device_2_batch_data_2025-12-08.csv --seed 1 \
	  --history data/samples/in-order/device_1_in_order.csv --history-start 300 --out cli/tests/fixtures/keras-lstm

.PHONY: keras-seeds
keras-seeds: $(KERAS_PYTHON) release ## Test RMSE of seeds 1-5 on reference devices 2-4, in Keras and in wattcast (docs/model.md's seed table)
	$(KERAS_PYTHON) tools/keras/recipe.py seeds --csv $(REFERENCE)/device_{2,3,4}_batch_data_2025-12-08.csv
	for device in 2 3 4; do for seed in 1 2 3 4 5; do \
	  $(WATTCAST) model train --csv $(REFERENCE)/device_$${device}_batch_data_2025-12-08.csv --seed $$seed --out /tmp/wattcast-seed-$$device-$$seed >/dev/null; \
	  echo "{\"csv\": \"device_$${device}\", \"seed\": $$seed, \"metrics\": $$(cat /tmp/wattcast-seed-$$device-$$seed/metrics.json | tr -d '\n ')}"; \
	done; done

.PHONY: bench-operator
bench-operator: test-env ## The operator binary with 100 experiments on envtest: time to reconcile, API calls, RSS, PostgreSQL load
	$(CARGO) bench -p wattcast-operator --bench operator_scale

.PHONY: bench-pipeline
bench-pipeline: test-env release ## The pipeline at real time with 100..5000 devices (minutes; needs the test env)
	$(WATTCAST) bench-pipeline --devices $${DEVICES:-100,500,1000,2000,3000,5000} --duration $${DURATION:-3m} --stop-at-first-miss --out $${OUT:-/tmp/wattcast-bench-pipeline.json}

.PHONY: bench-pipeline-processes
bench-pipeline-processes: test-env release ## The same with one process per workload, for CPU and memory per component
	$(WATTCAST) bench-pipeline --processes --devices $${DEVICES:-5000} --duration $${DURATION:-3m} --out $${OUT:-/tmp/wattcast-bench-pipeline-processes.json}

.PHONY: soak
soak: test-env release ## One hour at real time with 5,000 devices, a process per workload: coverage, every minute's p99, memory, descriptor and backlog slopes (see docs/performance.md)
	run_dir=$$(bash -c '. test-env/lib/common.sh && echo "$$RUN_DIR"'); \
	$(WATTCAST) soak --devices $${DEVICES:-5000} --duration $${DURATION:-60m} --warm-up $${WARM_UP:-10m} \
	  --architecture $${ARCHITECTURE:-streaming} --speedup $${SPEEDUP:-1} --layout $${LAYOUT:-processes} \
	  --watch mosquitto="$$run_dir/mosquitto/mosquitto.pid" --watch pulsar="$$run_dir/pulsar/pulsar.pid" \
	  --watch postgres="$$run_dir/postgres/data/postmaster.pid" \
	  --out $${OUT:-/tmp/wattcast-soak.json} --markdown $${MARKDOWN:-/tmp/wattcast-soak.md}

.PHONY: crd
crd: ## Regenerate crds/pipelineexperiment.yaml (and the chart's copy) and docs/reference.md from the Rust types
	$(CARGO) run -q -p wattcast-operator --bin crdgen > crds/pipelineexperiment.yaml
	cp crds/pipelineexperiment.yaml charts/wattcast/crds/pipelineexperiment.yaml
	$(CARGO) run -q -p wattcast-operator --bin crdgen -- reference > docs/reference.md

.PHONY: crd-check
crd-check: ## Fail if the committed CRD YAML or docs/reference.md is stale
	$(CARGO) test -q -p wattcast-crds --test crd_yaml_is_fresh

.PHONY: release
release: ## Build the release binaries
	$(CARGO) build --release --workspace --bins

.PHONY: samples
samples: release ## Regenerate the small sample datasets under data/samples
	rm -rf data/samples/in-order data/samples/missing-timestamps data/samples/missing-timestamps-jitter
	$(WATTCAST) dataset generate --scenario in-order --devices 2 --duration 15m --seed 42 --out data/samples/in-order
	$(WATTCAST) dataset generate --scenario missing-timestamps --devices 2 --duration 15m --seed 42 --out data/samples/missing-timestamps
	$(WATTCAST) dataset generate --scenario missing-timestamps --devices 1 --duration 15m --seed 42 --jitter 8s --out data/samples/missing-timestamps-jitter

# The original's four experiments, run locally (`wattcast local`, accelerated, on the test env)
# and reported (`wattcast report`) into $(REPORTS)/experiment-N.
REPORTS ?= reports
# PROFILE=dev uses the test build (the model's crates are optimised in it too) instead of release.
PROFILE ?= release
EXPERIMENT_BIN := $(CARGO_TARGET_DIR)/$(if $(filter dev,$(PROFILE)),debug,release)/wattcast
EXPERIMENT_1 := exp1-streaming exp1-batching
EXPERIMENT_2 := exp2-streaming exp2-batching
EXPERIMENT_3 := exp3-streaming-missing exp3-batching-in-order
EXPERIMENT_4 := exp4-bound-0s exp4-bound-5s exp4-bound-10s
EXPERIMENT_FILE_1 := data/experiments/experiment-1-constant-load.yaml
EXPERIMENT_FILE_2 := data/experiments/experiment-2-scaling.yaml
EXPERIMENT_FILE_3 := data/experiments/experiment-3-accuracy.yaml
EXPERIMENT_FILE_4 := data/experiments/experiment-4-watermark.yaml
EXPERIMENT_TITLE_1 := Experiment 1: constant load, Streaming vs Batching
EXPERIMENT_TITLE_2 := Experiment 2: scaling 1 to 20 devices, Streaming vs Batching
EXPERIMENT_TITLE_3 := Experiment 3: accuracy, Streaming on missing-timestamp data vs Batching on in-order data
EXPERIMENT_TITLE_4 := Experiment 4: watermark bound 0 s, 5 s, 10 s (Streaming)

.PHONY: experiment-1 experiment-2 experiment-3 experiment-4
experiment-1 experiment-2 experiment-3 experiment-4: experiment-%: test-env
	$(if $(filter dev,$(PROFILE)),$(CARGO) build --workspace --all-targets,$(CARGO) build --release --workspace --bins)
	mkdir -p $(REPORTS)/experiment-$*
	$(EXPERIMENT_BIN) local $(EXPERIMENT_FILE_$*) --drain-timeout 10m --summary-out $(REPORTS)/experiment-$*/summary.json
	$(EXPERIMENT_BIN) report $(EXPERIMENT_$*) --title "$(EXPERIMENT_TITLE_$*)" --out $(REPORTS)/experiment-$*

.PHONY: experiments
experiments: experiment-1 experiment-2 experiment-3 experiment-4 ## Run the original's four experiments locally (make experiment-N for one) and write their reports to reports/

.PHONY: report-png
report-png: ## Render reports/*/report.html to PNG with headless Chromium (installs Debian's chromium)
	command -v chromium >/dev/null || { sudo -n true 2>/dev/null && SUDO=sudo; $${SUDO:-} apt-get update -qq && $${SUDO:-} apt-get install -y -qq chromium; }
	for html in $(REPORTS)/*/report.html; do \
	  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,4200 \
	    --screenshot="$${html%.html}.png" "file://$$(realpath $$html)"; \
	done

# The cluster `make e2e` uses: kind when docker and kind work here, else the local node built
# from packages (deploy/local-cluster.sh); CLUSTER=kind|k3d|local chooses.
CLUSTER ?= $(shell if command -v kind >/dev/null 2>&1 && docker info >/dev/null 2>&1; then echo kind; else echo local; fi)
CLUSTER_NAME ?= wattcast
IMAGE_TAG ?= dev
WATTCAST_IMAGE ?= ghcr.io/wattcast/wattcast:$(IMAGE_TAG)
OPERATOR_IMAGE ?= ghcr.io/wattcast/wattcast-operator:$(IMAGE_TAG)
OPERATOR_NAMESPACE ?= wattcast-system
EXPERIMENT ?= data/experiments/e2e.yaml data/experiments/e2e-own-data.yaml
E2E_FULL_EXPERIMENTS ?= data/experiments/e2e.yaml data/experiments/e2e-batching.yaml $(foreach bound,0s 5s 10s,data/experiments/e2e-watermark-$(bound).yaml)
export CLUSTER CLUSTER_NAME OPERATOR_NAMESPACE
LOCAL_CLUSTER := deploy/local-cluster.sh
# On the local node kubectl and helm reach the API through the node's network namespace.
LOCAL_TOOLS = PATH=$$($(LOCAL_CLUSTER) bin-dir):$$PATH

.PHONY: prereqs
prereqs: ## Check docker, kind (or k3d), kubectl and helm are there (not needed with CLUSTER=local)
	deploy/cluster.sh prereqs

.PHONY: images
images: prereqs ## Build the wattcast and operator images with docker
	DOCKER_BUILDKIT=1 docker build --provenance=false --sbom=false -f deploy/Dockerfile --target wattcast -t $(WATTCAST_IMAGE) .
	DOCKER_BUILDKIT=1 docker build --provenance=false --sbom=false -f deploy/Dockerfile --target operator -t $(OPERATOR_IMAGE) .

.PHONY: kind-up
kind-up: prereqs ## Create the kind (or k3d with CLUSTER=k3d) cluster if it does not exist
	deploy/cluster.sh up

.PHONY: kind-load
kind-load: ## Load the images into the kind or k3d cluster
	deploy/cluster.sh load $(WATTCAST_IMAGE) $(OPERATOR_IMAGE)

.PHONY: deploy
deploy: ## helm install (or upgrade) the chart with the images built here, and wait for the operator
	helm upgrade --install wattcast charts/wattcast --namespace $(OPERATOR_NAMESPACE) --create-namespace \
	  --set image.repository=$(firstword $(subst :, ,$(OPERATOR_IMAGE))) --set image.tag=$(IMAGE_TAG) \
	  --set images.wattcast=$(WATTCAST_IMAGE) --wait --timeout 5m

.PHONY: cluster-up
cluster-up: ## Build (first run only) and start the local single-node Kubernetes, in namespaces of its own
	$(LOCAL_CLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop the local node: every process it started, by pid; remove its files
	$(LOCAL_CLUSTER) down

.PHONY: cluster-kubectl
cluster-kubectl: ## kubectl against the local node, e.g. make cluster-kubectl ARGS="get pods -A"
	$(LOCAL_CLUSTER) kubectl $(ARGS)

# The binaries the local images hold: release, or with E2E_PROFILE=dev the test build's (what CI
# uses after `make test`, which has already built them: a second, release build of every crate
# would cost a cold run some twenty minutes). `cargo test --no-run` builds them with the test
# build's features, so after `make test` it compiles nothing (`cargo build --bins` would rebuild
# many crates with other features).
E2E_PROFILE ?= release

.PHONY: e2e-binaries
e2e-binaries:
	$(if $(filter dev,$(E2E_PROFILE)),$(CARGO) test --workspace --no-run,$(CARGO) build --workspace --bins --release)

.PHONY: images-local
images-local: e2e-binaries ## Build every image without docker (mmdebstrap, umoci, skopeo) and import it into the local node
	WATTCAST_BINARIES=$(CARGO_TARGET_DIR)/$(if $(filter dev,$(E2E_PROFILE)),debug,release) $(LOCAL_CLUSTER) images

.PHONY: deploy-local
deploy-local: ## helm install the chart on the local node with the images images-local imported
	$(LOCAL_CLUSTER) image-values > $(CARGO_TARGET_DIR)/local-image-values.yaml
	$(LOCAL_TOOLS) helm upgrade --install wattcast charts/wattcast --namespace $(OPERATOR_NAMESPACE) --create-namespace \
	  --values $(CARGO_TARGET_DIR)/local-image-values.yaml --wait --timeout 5m
	# The local tags stay the same when the images change: start the operator on the new one.
	$(LOCAL_TOOLS) kubectl -n $(OPERATOR_NAMESPACE) rollout restart deployment/wattcast-operator
	$(LOCAL_TOOLS) kubectl -n $(OPERATOR_NAMESPACE) rollout status deployment/wattcast-operator --timeout 5m

.PHONY: e2e
e2e: e2e-$(if $(filter local,$(CLUSTER)),local,docker) ## A real cluster, the images, the chart, then data/experiments/e2e.yaml to Completed, checked from inside the cluster

.PHONY: e2e-docker
e2e-docker: prereqs kind-up images kind-load deploy
	deploy/e2e.sh $(EXPERIMENT)

.PHONY: e2e-local
E2E_OUT ?= reports/e2e
e2e-local: cluster-up images-local deploy-local
	mkdir -p $(E2E_OUT)
	rm -f $(E2E_OUT)/pod-usage.samples
	# Each pod's CPU and memory from its cgroups while the experiments run.
	$(LOCAL_CLUSTER) sample-usage $(E2E_OUT)/pod-usage.samples 5 & sampler=$$!; \
	  status=0; $(LOCAL_TOOLS) E2E_OUT=$(E2E_OUT) deploy/e2e.sh $(EXPERIMENT) || status=$$?; \
	  kill $$sampler 2>/dev/null || true; \
	  $(LOCAL_CLUSTER) usage-table $(E2E_OUT)/pod-usage.samples > $(E2E_OUT)/pod-usage.md || true; \
	  cat $(E2E_OUT)/pod-usage.md; exit $$status

.PHONY: e2e-faults
FAULTS ?=
e2e-faults: e2e-faults-$(if $(filter local,$(CLUSTER)),local,docker) ## The fault matrix on a real cluster: each pod of an experiment deleted mid-run (FAULTS="bridge pulsar" for some); fails if a reading is lost

.PHONY: e2e-faults-docker
e2e-faults-docker: prereqs kind-up images kind-load deploy
	E2E_OUT=$(E2E_OUT) deploy/e2e-faults.sh $(FAULTS)

.PHONY: e2e-faults-local
e2e-faults-local: cluster-up images-local deploy-local
	$(LOCAL_TOOLS) E2E_OUT=$(E2E_OUT) deploy/e2e-faults.sh $(FAULTS)

.PHONY: e2e-full
e2e-full: ## make e2e with a Batching run and experiment 4's three watermark bounds (reduced), each checked against wattcast local and dataset window
	$(MAKE) e2e EXPERIMENT="$(E2E_FULL_EXPERIMENTS)"
	test-env/up
	E2E_OUT=$(E2E_OUT) deploy/e2e-compare.sh $(CARGO_TARGET_DIR)/$(if $(filter dev,$(E2E_PROFILE)),debug,release)/wattcast $(E2E_FULL_EXPERIMENTS)

.PHONY: undeploy
undeploy: ## Delete every experiment (their finalizers clean up), then uninstall the chart
	-kubectl delete pipelineexperiments --all --all-namespaces --wait=true --timeout=5m
	-helm uninstall wattcast --namespace $(OPERATOR_NAMESPACE) --wait

.PHONY: kind-down
kind-down: ## Delete the kind or k3d cluster
	deploy/cluster.sh down

.PHONY: print-cluster
print-cluster:
	@echo $(CLUSTER)

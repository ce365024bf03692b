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
	$(CARGO) test --workspace

.PHONY: test-env
test-env: ## Install and start the real services the tests use (idempotent; writes test-env/.env)
	test-env/up

.PHONY: test-env-down
test-env-down: ## Stop the test services (data and downloads stay cached)
	test-env/down

.PHONY: lint
lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: bench
bench: ## Criterion benchmarks (windowing throughput, CSV parsing, model training and forecasting)
	$(CARGO) bench -p wattcast --bench windowing --bench csv_parse --bench model

.PHONY: bench-model
bench-model: ## Criterion benchmarks of the model only (training the original recipe, a 60-step forecast)
	$(CARGO) bench -p wattcast --bench model

.PHONY: bench-pipeline
bench-pipeline: test-env release ## The pipeline at real time with 100..5000 devices (minutes; needs the test env)
	$(WATTCAST) bench-pipeline --devices $${DEVICES:-100,500,1000,2000,5000} --duration $${DURATION:-3m} --stop-at-first-miss --out $${OUT:-/tmp/wattcast-bench-pipeline.json}

.PHONY: crd
crd: ## Regenerate crds/pipelineexperiment.yaml (and the chart's copy) from the Rust types
	$(CARGO) run -q -p wattcast-operator --bin crdgen > crds/pipelineexperiment.yaml
	cp crds/pipelineexperiment.yaml charts/wattcast/crds/pipelineexperiment.yaml

.PHONY: crd-check
crd-check: ## Fail if the committed CRD YAML is stale
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

.PHONY: e2e
e2e: ## Run an experiment on a kind cluster (not built yet: see docs/architecture.md, status)
	@echo "make e2e: the operator, chart and images are not built yet (issue 6); nothing to run." >&2
	@exit 1

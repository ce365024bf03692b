#!/usr/bin/env bash
# Applies an experiment on the current cluster (the operator must be installed), waits for it to
# complete, and prints its status and results. On failure or time-out it prints what is needed
# to see why — the experiment, its Events, its pods' logs, the operator's logs — and exits 1.
#   deploy/e2e.sh [EXPERIMENT.yaml]
set -euo pipefail

file=${1:-data/experiments/e2e.yaml}
namespace=${E2E_NAMESPACE:-wattcast-e2e}
operator_namespace=${OPERATOR_NAMESPACE:-wattcast-system}
timeout_s=${E2E_TIMEOUT_SECONDS:-1800}

log() { echo "[e2e $(date -u +%H:%M:%S)] $*"; }

[[ -f $file ]] || { echo "e2e: no experiment file $file" >&2; exit 1; }
name=$(kubectl create --dry-run=client -f "$file" -o jsonpath='{.metadata.name}')
[[ -n $name ]] || { echo "e2e: $file has no metadata.name" >&2; exit 1; }

diagnose() {
  set +e
  echo
  log "diagnostics for $namespace/$name"
  kubectl -n "$namespace" get pipelineexperiment "$name" -o yaml
  echo "--- objects"
  kubectl -n "$namespace" get pods,jobs,deployments,statefulsets,services,pvc -o wide
  echo "--- events (oldest first)"
  kubectl -n "$namespace" get events --sort-by=.lastTimestamp
  for pod in $(kubectl -n "$namespace" get pods -o name); do
    echo "--- logs of $pod"
    kubectl -n "$namespace" logs "$pod" --all-containers --tail=200
    kubectl -n "$namespace" logs "$pod" --all-containers --tail=50 --previous 2>/dev/null
  done
  echo "--- operator logs"
  kubectl -n "$operator_namespace" logs deployment/wattcast-operator --all-containers --tail=300
}

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
if kubectl -n "$namespace" get pipelineexperiment "$name" >/dev/null 2>&1; then
  log "deleting the previous run of $name"
  kubectl -n "$namespace" delete pipelineexperiment "$name" --wait=true --timeout=300s
fi
kubectl -n "$namespace" apply -f "$file"
log "applied $file as $namespace/$name; waiting up to ${timeout_s}s for Completed"

deadline=$((SECONDS + timeout_s))
last=""
while true; do
  phase=$(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  if [[ $phase != "$last" ]]; then
    log "phase: ${phase:-<none yet>}"
    last=$phase
  fi
  case $phase in
    Completed) break ;;
    Failed)
      log "the experiment failed"
      diagnose
      exit 1
      ;;
  esac
  if ((SECONDS >= deadline)); then
    log "timed out after ${timeout_s}s in phase '${phase}'"
    diagnose
    exit 1
  fi
  sleep 5
done

kubectl -n "$namespace" get pipelineexperiment "$name"
echo
log "conditions"
kubectl -n "$namespace" get pipelineexperiment "$name" \
  -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
log "progress"
kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.progress}'
echo
log "results"
results=$(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.results}')
echo "$results"
if [[ -z $results || $results != *coverage* ]]; then
  log "the experiment completed without results"
  diagnose
  exit 1
fi
log "passed"

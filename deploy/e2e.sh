#!/usr/bin/env bash
# Applies experiments on the current cluster (the operator must be installed), waits for each to
# complete, prints its status and results, and checks the run from inside the cluster: every
# reading sent stored exactly once (or counted late), forecasts for each device, the models in
# the object store. Then it deletes the experiment and checks that nothing of it is left.
# A pod that cannot run (image pull, crash loop, unschedulable, unbound volume) fails the run at
# once with its cause; so does a time-out. On failure it prints what is needed to see why.
#   deploy/e2e.sh [EXPERIMENT.yaml...]   (default: e2e.yaml and e2e-own-data.yaml)
# Environment: E2E_NAMESPACE (wattcast-e2e), OPERATOR_NAMESPACE (wattcast-system),
# E2E_TIMEOUT_SECONDS per experiment (1800), E2E_OUT for the final status JSON (reports/e2e),
# E2E_KEEP=1 to leave the experiments in place.
set -euo pipefail

namespace=${E2E_NAMESPACE:-wattcast-e2e}
operator_namespace=${OPERATOR_NAMESPACE:-wattcast-system}
timeout_s=${E2E_TIMEOUT_SECONDS:-1800}
out=${E2E_OUT:-reports/e2e}
# How long a pod may stay unschedulable, or a claim unbound, before the run is called stuck.
stuck_after_s=${E2E_STUCK_SECONDS:-180}
experiment_label=wattcast.io/experiment

log() { echo "[e2e $(date -u +%H:%M:%S)] $*"; }

diagnose() {
  local name=$1
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
  set -e
}

fail() {
  local name=$1; shift
  log "FAILED: $*"
  diagnose "$name"
  exit 1
}

# Prints why the experiment's pods cannot make progress, if they cannot; nothing otherwise.
blocked_pods() {
  local name=$1
  kubectl -n "$namespace" get pods -l "$experiment_label=$name" -o json | jq -r --argjson stuck "$stuck_after_s" '
    .items[] | . as $pod
    | ([.status.initContainerStatuses[]?, .status.containerStatuses[]?] | map(select(.state.waiting != null))) as $waiting
    | ( $waiting[]
        | select(.state.waiting.reason as $r
            | ["ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
               "CreateContainerConfigError", "CreateContainerError", "RunContainerError"] | index($r))
        | "\($pod.metadata.name): container \(.name) \(.state.waiting.reason): \(.state.waiting.message // "")" ),
      ( $waiting[]
        | select(.state.waiting.reason == "CrashLoopBackOff" and .restartCount >= 3)
        | "\($pod.metadata.name): container \(.name) CrashLoopBackOff after \(.restartCount) restarts (last exit \(.lastState.terminated.exitCode // "?"): \(.lastState.terminated.reason // ""))" ),
      ( .status.conditions[]?
        | select(.type == "PodScheduled" and .status == "False" and .reason == "Unschedulable")
        | select((now - (.lastTransitionTime | fromdateiso8601)) > $stuck)
        | "\($pod.metadata.name): unschedulable: \(.message)" )'
  kubectl -n "$namespace" get pvc -l "$experiment_label=$name" -o json | jq -r --argjson stuck "$stuck_after_s" '
    .items[] | select(.status.phase != "Bound")
    | select((now - (.metadata.creationTimestamp | fromdateiso8601)) > $stuck)
    | "PersistentVolumeClaim \(.metadata.name) is \(.status.phase) after \($stuck)s (is there a default StorageClass?)"'
}

wait_for_completion() {
  local name=$1 deadline=$((SECONDS + timeout_s)) last="" phase blocked
  while true; do
    phase=$(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    if [[ $phase != "$last" ]]; then
      log "$name phase: ${phase:-<none yet>}"
      last=$phase
    fi
    case $phase in
      Completed) return 0 ;;
      Failed) fail "$name" "the experiment failed" ;;
    esac
    blocked=$(blocked_pods "$name" || true)
    [[ -z $blocked ]] || fail "$name" "pods cannot run:"$'\n'"$blocked"
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout_s}s in phase '${phase}'"
      diagnose "$name"
      exit 1
    fi
    sleep 5
  done
}

# psql NAME SQL: runs SQL in the experiment's managed PostgreSQL, unaligned, tuples only.
psql_in() {
  local name=$1 sql=$2
  # shellcheck disable=SC2016 # expanded by the shell in the pod, not here
  kubectl -n "$namespace" exec "statefulset/$name-postgres" -c postgres -- \
    sh -c 'psql -v ON_ERROR_STOP=1 -qAt -U "$POSTGRES_USER" -d wattcast -c "$1"' psql "$sql"
}

# The data checks, from inside the cluster (the managed PostgreSQL and object store).
check_data() {
  local name=$1 devices schema
  devices=$(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.spec.devices.count}')
  schema="exp_${name//-/_}"
  local counts
  counts=$(psql_in "$name" "SET search_path TO $schema;
    SELECT (SELECT coalesce(sum(readings_sent), 0) FROM sensor_reports),
           (SELECT count(*) FROM sensor_reports),
           (SELECT count(*) FROM readings WHERE NOT imputed),
           (SELECT count(*) FROM late_readings),
           (SELECT count(*) FROM readings r JOIN late_readings l USING (device, event_time) WHERE NOT r.imputed),
           (SELECT count(DISTINCT device) FROM forecasts),
           (SELECT count(*) FROM models)") || fail "$name" "cannot read the experiment's PostgreSQL"
  local sent reported stored late both forecast_devices models
  IFS='|' read -r sent reported stored late both forecast_devices models <<<"$counts"
  log "$name in PostgreSQL: sent $sent by $reported sensors, stored $stored, late $late, both $both, devices with forecasts $forecast_devices, models $models"
  ((reported == devices)) || fail "$name" "$reported of $devices sensors reported what they sent"
  ((sent > 0)) || fail "$name" "the sensors sent nothing"
  ((both == 0)) || fail "$name" "$both readings are stored both in a window and as late"
  ((stored + late == sent)) || fail "$name" "sent $sent readings but stored $stored and counted $late late: $((sent - stored - late)) unaccounted for"
  ((forecast_devices == devices)) || fail "$name" "only $forecast_devices of $devices devices have forecasts"
  # Every model the store lists is in the object store (the managed one's data directory).
  local prefixes prefix missing=0
  prefixes=$(psql_in "$name" "SELECT object_prefix FROM $schema.models ORDER BY device, version")
  for prefix in $prefixes; do
    # shellcheck disable=SC2016 # expanded by the shell in the pod, not here
    kubectl -n "$namespace" exec "statefulset/$name-rustfs" -- \
      sh -c 'test -e "${RUSTFS_VOLUMES:-/data}/wattcast-models/$1/model.onnx" && test -e "${RUSTFS_VOLUMES:-/data}/wattcast-models/$1/scaler.json"' \
      s3 "$prefix" || { log "model $prefix is not in the object store"; missing=$((missing + 1)); }
  done
  ((missing == 0)) || fail "$name" "$missing models listed in PostgreSQL are missing from the object store"
  log "$name: every reading sent is stored once or counted late; forecasts for all $devices devices; $models models in the object store"
}

# Deletes the experiment and checks its finalizer ran and nothing of it is left.
check_deletion() {
  local name=$1
  kubectl -n "$namespace" delete pipelineexperiment "$name" --wait=true --timeout=300s >/dev/null \
    || fail "$name" "deleting the experiment did not finish within 300s (finalizer stuck?)"
  local deadline=$((SECONDS + 180)) left
  while true; do
    left=$(kubectl -n "$namespace" get pods,pvc,statefulsets,deployments,jobs,services,configmaps,secrets,networkpolicies \
      -l "$experiment_label=$name" -o name 2>/dev/null || true)
    [[ -z $left ]] && break
    ((SECONDS < deadline)) || { log "left after deleting $name:"$'\n'"$left"; exit 1; }
    sleep 3
  done
  local cleaned
  # The newest CleanedUp Event (earlier runs of the same name leave theirs).
  cleaned=$(kubectl -n "$namespace" get events --field-selector "involvedObject.name=$name,reason=CleanedUp" \
    --sort-by=.lastTimestamp -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null | tail -n1 || true)
  [[ -n $cleaned ]] || { log "no CleanedUp Event for $name: the finalizer did not report"; exit 1; }
  log "$name deleted; finalizer: $cleaned; no object of it is left"
}

run_experiment() {
  local file=$1 name
  [[ -f $file ]] || { echo "e2e: no experiment file $file" >&2; exit 1; }
  # The file's PipelineExperiment (it may also carry, e.g., the ConfigMap of its dataset).
  name=$(kubectl create --dry-run=client -f "$file" -o json \
    | jq -r 'if .kind == "List" then .items[] else . end | select(.kind == "PipelineExperiment") | .metadata.name')
  [[ -n $name ]] || { echo "e2e: $file has no metadata.name" >&2; exit 1; }
  if kubectl -n "$namespace" get pipelineexperiment "$name" >/dev/null 2>&1; then
    log "deleting the previous run of $name"
    kubectl -n "$namespace" delete pipelineexperiment "$name" --wait=true --timeout=300s
  fi
  kubectl -n "$namespace" apply -f "$file"
  log "applied $file as $namespace/$name; waiting up to ${timeout_s}s for Completed"
  local started=$SECONDS
  wait_for_completion "$name"
  log "$name completed in $((SECONDS - started))s"

  kubectl -n "$namespace" get pipelineexperiment "$name"
  echo
  log "conditions"
  kubectl -n "$namespace" get pipelineexperiment "$name" \
    -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
  log "progress"
  kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.progress}'
  echo
  log "results"
  local results
  results=$(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.results}')
  echo "$results"
  mkdir -p "$out"
  kubectl -n "$namespace" get pipelineexperiment "$name" -o json >"$out/$name.json"
  log "final status written to $out/$name.json"
  if [[ -z $results || $results != *coverage* ]]; then
    log "the experiment completed without results"
    diagnose "$name"
    exit 1
  fi
  if [[ ${E2E_CHECK_DATA:-1} == 1 ]]; then
    check_data "$name"
  fi
  if [[ ${E2E_KEEP:-0} != 1 ]]; then
    check_deletion "$name"
  fi
}

(($# > 0)) || set -- data/experiments/e2e.yaml data/experiments/e2e-own-data.yaml
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
for file in "$@"; do
  run_experiment "$file"
done
log "passed"

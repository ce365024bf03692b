#!/usr/bin/env bash
# Applies experiments on the current cluster (the operator must be installed), waits for each to
# complete, prints its status and results, and checks the run from inside the cluster: every
# reading sent stored exactly once (or counted late), forecasts for each device, the models in
# the object store; that no generated password appears in any log, Event or status; that the
# services refuse wrong credentials; and that the NetworkPolicies keep other pods out. Then it
# deletes the experiment and checks that nothing of it is left. The namespace enforces Pod
# Security `restricted`: every pod the operator makes must be admitted.
# A pod that cannot run (image pull, crash loop, unschedulable, unbound volume) fails the run at
# once with its cause; so does a time-out. On failure it prints what is needed to see why.
#   deploy/e2e.sh [EXPERIMENT.yaml...]   (default: e2e.yaml and e2e-own-data.yaml)
# Environment: E2E_NAMESPACE (wattcast-e2e), OPERATOR_NAMESPACE (wattcast-system),
# E2E_TIMEOUT_SECONDS per experiment (1800), E2E_OUT for the final status JSON (reports/e2e),
# E2E_KEEP=1 to leave the experiments in place, E2E_CHECK_NETWORK_POLICIES=0 where the cluster's
# network plugin does not enforce NetworkPolicies, E2E_CHECK_SECURITY=0 to check only the data.
set -euo pipefail

namespace=${E2E_NAMESPACE:-wattcast-e2e}
operator_namespace=${OPERATOR_NAMESPACE:-wattcast-system}
keras_model=cli/tests/fixtures/keras-lstm
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
  # A controller whose pods admission refuses (e.g. Pod Security) creates none: report why.
  kubectl -n "$namespace" get events --field-selector reason=FailedCreate -o json | jq -r --arg prefix "$name-" --arg since "$started_at" '
    .items[] | select(.involvedObject.name | startswith($prefix))
    | select((.lastTimestamp // .eventTime // "") >= $since)
    | select(.message | test("forbidden"))
    | "\(.involvedObject.kind)/\(.involvedObject.name) cannot create pods: \(.message)"'
  kubectl -n "$namespace" get pvc -l "$experiment_label=$name" -o json | jq -r --argjson stuck "$stuck_after_s" '
    .items[] | select(.status.phase != "Bound")
    | select((now - (.metadata.creationTimestamp | fromdateiso8601)) > $stuck)
    | "PersistentVolumeClaim \(.metadata.name) is \(.status.phase) after \($stuck)s (is there a default StorageClass?)"'
}

# capture_logs NAME: saves the logs of the experiment's pods into $logs_dir (one file per pod,
# current and previous containers), so that pods the operator deletes when the run completes
# still have their logs checked for secrets. One pod listing per call; a previous container's
# log only for a pod that restarted; a finished pod's log once.
capture_logs() {
  local name=$1 pod phase restarts file
  while read -r pod phase restarts; do
    file=$logs_dir/log-$pod
    [[ -f $logs_dir/final-$pod ]] && continue
    {
      kubectl -n "$namespace" logs "pod/$pod" --all-containers 2>/dev/null
      ((restarts == 0)) || kubectl -n "$namespace" logs "pod/$pod" --all-containers --previous 2>/dev/null
    } >"$file.partial" || true
    # Keep the longest capture: a deleted pod's last attempt may come back empty.
    if [[ ! -f $file ]] || (($(wc -c <"$file.partial") >= $(wc -c <"$file"))); then
      mv "$file.partial" "$file"
    else
      rm -f "$file.partial"
    fi
    if [[ $phase == Succeeded || $phase == Failed ]] && [[ -s $file ]]; then touch "$logs_dir/final-$pod"; fi
  done < <(kubectl -n "$namespace" get pods -l "$experiment_label=$name" -o json 2>/dev/null | jq -r '.items[]
    | "\(.metadata.name) \(.status.phase) \([.status.initContainerStatuses[]?, .status.containerStatuses[]? | .restartCount] | add // 0)"')
}

wait_for_completion() {
  local name=$1 deadline=$((SECONDS + timeout_s)) last="" phase blocked started_at
  started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
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
    capture_logs "$name"
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
  if [[ -n $(own_model_map "$name") ]]; then
    check_own_model "$name" "$schema" "$devices"
  fi
}

# The ConfigMap an experiment's own model comes from (forecasting.model.source.configMap), if any.
own_model_map() {
  kubectl -n "$namespace" get pipelineexperiment "$1" -o json \
    | jq -r '.spec.forecasting.model.source.configMap.name // empty'
}

# An experiment with its own model and retrain: Never: the one model is every device's, it made
# every forecast, and nothing was retrained.
check_own_model() {
  local name=$1 schema=$2 devices=$3 counts
  counts=$(psql_in "$name" "SET search_path TO $schema;
    SELECT (SELECT count(*) FROM models WHERE version = 'initial' AND readings = 0),
           (SELECT count(*) FROM models),
           (SELECT count(*) FROM forecasts WHERE model_version <> 'initial')")
  local own all other
  IFS='|' read -r own all other <<<"$counts"
  ((own == devices && all == devices)) || fail "$name" "expected the own model as each of $devices devices' only model, found $own of $all"
  ((other == 0)) || fail "$name" "$other forecasts were made by a model other than the own one"
  local retrains
  retrains=$(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.progress.retrains}')
  ((${retrains:-0} == 0)) || fail "$name" "$retrains models were retrained although retrain is Never"
  log "$name: the own model (a Keras export) is every device's only model and made every forecast; nothing was retrained"
}

# The experiment's generated secrets (passwords and keys; not the fixed user names), one per line.
generated_secrets() {
  local name=$1
  kubectl -n "$namespace" get secret "$name-credentials" -o json \
    | jq -r '.data | to_entries[] | select(.key | test("password|secret-key|access-key")) | .value | @base64d'
}

# No generated secret appears in any pod's log, any Event, the experiment's status or the
# operator's log. Names what leaked where, never the value.
check_no_secret_leaks() {
  local name=$1 dir=$logs_dir pods
  capture_logs "$name"
  pods=$(find "$dir" -name 'log-*' | wc -l)
  generated_secrets "$name" >"$dir/secrets"
  [[ $(wc -l <"$dir/secrets") -ge 3 ]] || fail "$name" "the credentials Secret $name-credentials has fewer than 3 generated values"
  kubectl -n "$operator_namespace" logs deployment/wattcast-operator --all-containers >"$dir/log-operator" 2>&1 || true
  kubectl -n "$namespace" get events -o json >"$dir/events-$namespace"
  kubectl -n "$operator_namespace" get events -o json >"$dir/events-$operator_namespace"
  kubectl -n "$namespace" get pipelineexperiment "$name" -o json | jq '.status' >"$dir/status"
  local leaks
  leaks=$(cd "$dir" || exit 1; grep -l -F -f secrets -- log-* events-* status || true)
  rm -f "$dir/secrets"
  [[ -z $leaks ]] || fail "$name" "a generated password or key appears in: $(echo "$leaks" | tr '\n' ' ')"
  log "$name: no generated password or key in the logs of its $pods pods (captured through the run), the Events, the status or the operator's log"
}

# Mosquitto refuses anonymous clients and a wrong password (and takes the right one);
# PostgreSQL refuses a wrong password over TCP (and takes the right one).
check_refusals() {
  local name=$1 user password output
  user=$(kubectl -n "$namespace" get secret "$name-credentials" -o jsonpath='{.data.mqtt-username}' | base64 -d)
  password=$(kubectl -n "$namespace" get secret "$name-credentials" -o jsonpath='{.data.mqtt-password}' | base64 -d)
  # mqtt_publish [USER]: publishes one probe message from inside the broker's pod, reading the
  # password (if any) from stdin so that it is in no command line outside the pod.
  mqtt_publish() {
    # shellcheck disable=SC2016 # expanded by the shell in the pod, not here
    kubectl -n "$namespace" exec -i "deployment/$name-mosquitto" -c mosquitto -- sh -c '
      read -r password
      if [ -n "$1" ]; then set -- -u "$1" -P "$password"; else set --; fi
      mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t wattcast/e2e-probe -m probe "$@"' sh "$@" 2>&1
  }
  if output=$(echo "" | mqtt_publish); then fail "$name" "Mosquitto accepted an anonymous client"; fi
  [[ $output == *"not authori"* ]] || fail "$name" "Mosquitto refused an anonymous client, but not for authorisation: $output"
  if output=$(echo "wrong-$password" | mqtt_publish "$user"); then fail "$name" "Mosquitto accepted a wrong password"; fi
  [[ $output == *"not authori"* ]] || fail "$name" "Mosquitto refused a wrong password, but not for authorisation: $output"
  output=$(echo "$password" | mqtt_publish "$user") || fail "$name" "Mosquitto refused the right password: $output"
  # shellcheck disable=SC2016 # expanded by the shell in the pod, not here
  if output=$(kubectl -n "$namespace" exec "statefulset/$name-postgres" -c postgres -- sh -c \
    'PGPASSWORD="wrong-$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U "$POSTGRES_USER" -d wattcast -qAt -c "SELECT 1"' 2>&1); then
    fail "$name" "PostgreSQL accepted a wrong password"
  fi
  [[ $output == *"password authentication failed"* ]] || fail "$name" "PostgreSQL refused a wrong password, but not for it: $output"
  # shellcheck disable=SC2016 # expanded by the shell in the pod, not here
  output=$(kubectl -n "$namespace" exec "statefulset/$name-postgres" -c postgres -- sh -c \
    'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U "$POSTGRES_USER" -d wattcast -qAt -c "SELECT 1"' 2>&1) \
    || fail "$name" "PostgreSQL refused the right password over TCP: $output"
  log "$name: Mosquitto refuses anonymous clients and a wrong password, PostgreSQL a wrong password; both take the right ones"
}

# probe NAMESPACE POD LABELS EXPECT TARGET...: runs `wattcast probe` in a pod with those labels
# (a JSON object) and reports whether every target was as expected: reachable within 60 s (a
# new pod's policies take a moment to be programmed), or unreachable for 15 s on end.
probe() {
  local probe_namespace=$1 pod=$2 labels=$3 expect=$4; shift 4
  local image phase deadline=$((SECONDS + 180)) patience=15
  [[ $expect == reachable ]] && patience=60
  image=$(kubectl -n "$operator_namespace" get deployment wattcast-operator -o json \
    | jq -r '.spec.template.spec.containers[0].env[] | select(.name == "WATTCAST_IMAGE_WATTCAST") | .value')
  kubectl -n "$probe_namespace" delete pod "$pod" --ignore-not-found --wait=true >/dev/null
  jq -n --arg pod "$pod" --arg image "$image" --argjson labels "$labels" --arg expect "$expect" \
    --arg patience "$patience" --args '$ARGS.positional as $targets | {
      apiVersion: "v1", kind: "Pod",
      metadata: {name: $pod, labels: $labels},
      spec: {
        restartPolicy: "Never", automountServiceAccountToken: false,
        securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: "RuntimeDefault"}},
        containers: [{
          name: "probe", image: $image, imagePullPolicy: "IfNotPresent",
          args: (["probe", "--expect", $expect, "--patience-seconds", $patience] + $targets),
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}},
          resources: {requests: {cpu: "10m", memory: "16Mi"}, limits: {memory: "64Mi"}}
        }]
      }
    }' "$@" | kubectl -n "$probe_namespace" apply -f - >/dev/null
  while true; do
    phase=$(kubectl -n "$probe_namespace" get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    [[ $phase == Succeeded || $phase == Failed ]] && break
    ((SECONDS < deadline)) || { log "probe pod $probe_namespace/$pod is still $phase after 180s"; phase=Timeout; break; }
    sleep 2
  done
  kubectl -n "$probe_namespace" logs "$pod" 2>&1 | sed "s|^|  [$probe_namespace/$pod] |"
  kubectl -n "$probe_namespace" delete pod "$pod" --wait=false >/dev/null 2>&1 || true
  [[ $phase == Succeeded ]]
}

# The infrastructure admits the experiment's workloads and no one else: a pod labelled as one
# of its workloads reaches PostgreSQL, Mosquitto and Pulsar (so the addresses and the probe
# work), the same pod unlabelled or in another namespace does not.
check_network_policies() {
  local name=$1 outsider=$namespace-outsider
  if [[ ${E2E_CHECK_NETWORK_POLICIES:-1} != 1 ]]; then
    log "$name: NetworkPolicy enforcement not checked (E2E_CHECK_NETWORK_POLICIES=0)"
    return 0
  fi
  local targets=("$name-postgres.$namespace.svc:5432" "$name-mosquitto.$namespace.svc:1883" "$name-pulsar.$namespace.svc:6650")
  probe "$namespace" "$name-probe-workload" "{\"$experiment_label\": \"$name\", \"wattcast.io/role\": \"workload\"}" reachable "${targets[@]}" \
    || fail "$name" "a pod labelled as the experiment's workload cannot reach its services"
  probe "$namespace" "$name-probe-unlabelled" '{}' unreachable "${targets[@]}" \
    || fail "$name" "an unlabelled pod in $namespace reaches the experiment's services: NetworkPolicies are not enforced"
  ensure_namespace "$outsider"
  probe "$outsider" "$name-probe-outsider" "{\"$experiment_label\": \"$name\", \"wattcast.io/role\": \"workload\"}" unreachable "${targets[@]}" \
    || fail "$name" "a pod in namespace $outsider reaches the experiment's services: NetworkPolicies are not enforced"
  log "$name: its workloads reach PostgreSQL, Mosquitto and Pulsar; other pods, here or in $outsider, do not"
}

# ensure_namespace NAME: the namespace, enforcing Pod Security `restricted`; proved by a
# privileged pod that the API server refuses.
ensure_namespace() {
  local ns=$1 refusal
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$ns" --overwrite >/dev/null \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest \
    pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/audit=restricted
  # Admission looks the pod's ServiceAccount up first; a new namespace may not have it yet.
  kubectl -n "$ns" create serviceaccount default --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  if refusal=$(kubectl -n "$ns" apply --dry-run=server -f - 2>&1 <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: psa-probe}
spec:
  containers: [{name: probe, image: probe.invalid/none:1, securityContext: {privileged: true}}]
YAML
  ); then
    log "namespace $ns admits a privileged pod: Pod Security admission is not enforcing"
    exit 1
  fi
  [[ $refusal == *PodSecurity* ]] || { log "namespace $ns refused a privileged pod, but not for Pod Security: $refusal"; exit 1; }
}

# Waits (up to 180 s) until no object labelled with the experiment is left; the garbage
# collector deletes its pods and volumes after the experiment itself is gone.
wait_until_gone() {
  local name=$1 deadline=$((SECONDS + 180)) left
  while true; do
    left=$(kubectl -n "$namespace" get pods,pvc,statefulsets,deployments,jobs,services,configmaps,secrets,networkpolicies \
      -l "$experiment_label=$name" -o name 2>/dev/null || true)
    [[ -z $left ]] && return 0
    ((SECONDS < deadline)) || { log "left after deleting $name:"$'\n'"$left"; exit 1; }
    sleep 3
  done
}

# Deletes the experiment and checks its finalizer ran and nothing of it is left.
check_deletion() {
  local name=$1
  kubectl -n "$namespace" delete pipelineexperiment "$name" --wait=true --timeout=300s >/dev/null \
    || fail "$name" "deleting the experiment did not finish within 300s (finalizer stuck?)"
  wait_until_gone "$name"
  local cleaned
  # The newest CleanedUp Event (earlier runs of the same name leave theirs).
  cleaned=$(kubectl -n "$namespace" get events --field-selector "involvedObject.name=$name,reason=CleanedUp" \
    --sort-by=.lastTimestamp -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null | tail -n1 || true)
  [[ -n $cleaned ]] || { log "no CleanedUp Event for $name: the finalizer did not report"; exit 1; }
  log "$name deleted; finalizer: $cleaned; no object of it is left"
}

# run_experiment FILE [DURING]: applies the experiment, runs `DURING NAME` beside the run when
# given (`deploy/e2e-faults.sh` injects its fault so), waits for Completed and checks the run.
run_experiment() {
  local file=$1 during=${2:-} name during_pid=""
  [[ -f $file ]] || { echo "e2e: no experiment file $file" >&2; exit 1; }
  # The file's PipelineExperiment (it may also carry, e.g., the ConfigMap of its dataset).
  name=$(kubectl create --dry-run=client -f "$file" -o json \
    | jq -r 'if .kind == "List" then .items[] else . end | select(.kind == "PipelineExperiment") | .metadata.name')
  [[ -n $name ]] || { echo "e2e: $file has no metadata.name" >&2; exit 1; }
  if kubectl -n "$namespace" get pipelineexperiment "$name" >/dev/null 2>&1; then
    log "deleting the previous run of $name"
    kubectl -n "$namespace" delete pipelineexperiment "$name" --wait=true --timeout=300s
    wait_until_gone "$name"
  fi
  logs_dir=$(mktemp -d)
  # An experiment bringing its own model gets the repo's Keras export (the fixture `make
  # keras-model` made), put in the ConfigMap it names the way a user would.
  local model_map
  model_map=$(kubectl create --dry-run=client -f "$file" -o json \
    | jq -r 'if .kind == "List" then .items[] else . end | select(.kind == "PipelineExperiment") | .spec.forecasting.model.source.configMap.name // empty')
  if [[ -n $model_map ]]; then
    kubectl -n "$namespace" create configmap "$model_map" --dry-run=client -o yaml \
      --from-file="$keras_model/model.onnx" --from-file="$keras_model/scaler.json" | kubectl -n "$namespace" apply -f -
  fi
  kubectl -n "$namespace" apply -f "$file"
  log "applied $file as $namespace/$name; waiting up to ${timeout_s}s for Completed"
  local started=$SECONDS
  if [[ -n $during ]]; then
    "$during" "$name" &
    during_pid=$!
  fi
  wait_for_completion "$name"
  log "$name completed in $((SECONDS - started))s"
  if [[ -n $during_pid ]]; then
    wait "$during_pid" || fail "$name" "$during did not succeed"
  fi

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
  if [[ ${E2E_CHECK_SECURITY:-1} == 1 ]]; then
    check_refusals "$name"
    check_network_policies "$name"
    check_no_secret_leaks "$name"
  fi
  if [[ ${E2E_KEEP:-0} != 1 ]]; then
    check_deletion "$name"
  fi
  rm -rf "$logs_dir"
}

main() {
  (($# > 0)) || set -- data/experiments/e2e.yaml data/experiments/e2e-own-data.yaml
  ensure_namespace "$namespace"
  log "namespace $namespace enforces Pod Security restricted"
  local file
  for file in "$@"; do
    run_experiment "$file"
  done
  log "passed"
}

# Sourced (by deploy/e2e-faults.sh), it only defines the functions.
[[ ${BASH_SOURCE[0]} != "$0" ]] || main "$@"

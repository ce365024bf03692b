#!/usr/bin/env bash
# The fault matrix on a real cluster (`make e2e-faults`): for each fault, runs
# data/experiments/e2e-faults.yaml, injects the fault 20 s after the sensors started (a pod
# deleted, the windowers scaled 1 → 3 → 1, the object store scaled to 0, the operator's pod
# deleted), measures how long until a replacement is Ready (for the scaling: until one windower
# is left), lets the run complete and checks from the experiment's PostgreSQL, as
# `make e2e` does, that every reading sent was stored exactly once or counted late. Every row
# runs even when one fails; the table goes to $E2E_OUT/faults-cluster.md (and .json), and the
# script fails if any row did.
#   deploy/e2e-faults.sh [FAULT...]   (default: all; `deploy/e2e-faults.sh list` names them)
#   deploy/e2e-faults.sh table        the table of the last run's $E2E_OUT/faults-cluster.json
# Environment: as deploy/e2e.sh, and E2E_FAULTS_APPEND=1 to add rows to the last table (a
# fault run again replaces its earlier row).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=deploy/e2e.sh
source "$here/e2e.sh"

FAULTS=(sensor bridge windower windower-scale coordinator trainer mosquitto pulsar postgres rustfs operator operator-ha)
EXPERIMENT_FILE=${E2E_FAULTS_EXPERIMENT:-data/experiments/e2e-faults.yaml}
# How long after the sensors start the fault is injected.
INJECT_AFTER_S=${E2E_FAULTS_INJECT_AFTER:-20}
# How long three windowers share the readings before they are scaled back to one (at 10×, five
# windows of event time: keys move to the new windowers with windows open, and back).
SCALE_HOLD_S=${E2E_FAULTS_SCALE_HOLD:-30}
component_label=app.kubernetes.io/component

describe() {
  case $1 in
    sensor) echo "a sensor pod deleted mid-replay (its Job makes another)" ;;
    bridge | windower | coordinator | trainer) echo "the $1 pod deleted" ;;
    windower-scale) echo "the windowers scaled 1 → 3 → 1 (kubectl scale; recovery: the scale-down)" ;;
    mosquitto | pulsar | postgres) echo "the ${1^} pod deleted (restarts on its volume)" ;;
    rustfs) echo "the object store scaled to 0 (the operator scales it back)" ;;
    operator) echo "the operator's pod deleted mid-run" ;;
    operator-ha) echo "two operator replicas, the leader's pod deleted" ;;
  esac
}

# pods_of NAME FAULT: the selector of the pods the fault hits, and their namespace.
selector_of() {
  local name=$1 fault=$2
  case $fault in
    operator | operator-ha) echo "$operator_namespace app.kubernetes.io/name=wattcast-operator" ;;
    windower-scale) echo "$namespace $experiment_label=$name,$component_label=windower" ;;
    *) echo "$namespace $experiment_label=$name,$component_label=$fault" ;;
  esac
}

# ready_pods NAMESPACE SELECTOR: NAME UID of each Ready pod not being deleted (a StatefulSet's
# new pod has the old one's name, not its UID).
ready_pods() {
  kubectl -n "$1" get pods -l "$2" -o json | jq -r '.items[]
    | select(.metadata.deletionTimestamp == null)
    | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))
    | "\(.metadata.name) \(.metadata.uid)"' | sort
}

# inject NAME: waits for Running plus INJECT_AFTER_S, injects $fault, then waits until a pod
# that was not there before is Ready; writes the seconds that took to $row_dir/recovery.
inject() {
  local name=$1 deadline=$((SECONDS + 600)) phase ns selector before after started leader=""
  if [[ $fault == operator-ha ]]; then
    kubectl -n "$operator_namespace" scale deployment/wattcast-operator --replicas 2 >/dev/null
    kubectl -n "$operator_namespace" rollout status deployment/wattcast-operator --timeout 300s >/dev/null
  fi
  until [[ $(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.phase}' 2>/dev/null) == Running ]]; do
    ((SECONDS < deadline)) || { log "$fault: the run never reached Running"; return 1; }
    sleep 1
  done
  sleep "$INJECT_AFTER_S"
  read -r ns selector < <(selector_of "$name" "$fault")
  before=$(ready_pods "$ns" "$selector")
  [[ -n $before ]] || { log "$fault: no Ready pod matches $selector in $ns to inject into"; return 1; }
  phase=$(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.phase}')
  log "$fault: injecting in phase $phase: $(describe "$fault")"
  started=$SECONDS
  deadline=$((SECONDS + 600))
  case $fault in
    rustfs) kubectl -n "$ns" scale "statefulset/$name-rustfs" --replicas 0 >/dev/null ;;
    windower-scale)
      kubectl -n "$ns" scale "deployment/$name-windower" --replicas 3 >/dev/null
      until [[ $(ready_pods "$ns" "$selector" | wc -l) -eq 3 ]]; do
        ((SECONDS < deadline)) || { log "$fault: three windowers were not Ready within 600 s"; return 1; }
        sleep 1
      done
      log "$fault: three windowers Ready after $((SECONDS - started)) s; scaling back to one in $SCALE_HOLD_S s"
      sleep "$SCALE_HOLD_S"
      started=$SECONDS
      kubectl -n "$ns" scale "deployment/$name-windower" --replicas 1 >/dev/null
      ;;
    sensor) kubectl -n "$ns" delete pod "$(head -n1 <<<"$before" | cut -d' ' -f1)" --wait=false >/dev/null ;;
    operator-ha)
      leader=$(kubectl -n "$ns" get lease wattcast-operator -o jsonpath='{.spec.holderIdentity}')
      [[ $(wc -l <<<"$before") -eq 2 && -n $leader ]] || { log "$fault: expected two Ready replicas and a leader"; return 1; }
      kubectl -n "$ns" delete pod "$leader" --wait=false >/dev/null
      ;;
    *) kubectl -n "$ns" delete pod -l "$selector" --wait=false >/dev/null ;;
  esac
  while [[ $fault == operator-ha ]]; do
    # Recovered: the other replica holds the Lease.
    after=$(kubectl -n "$ns" get lease wattcast-operator -o jsonpath='{.spec.holderIdentity}')
    [[ -n $after && $after != "$leader" ]] && break
    ((SECONDS < deadline)) || { log "$fault: no replica took the Lease over within 600 s"; return 1; }
    sleep 1
  done
  while [[ $fault == windower-scale ]]; do
    # Recovered: one windower left, Ready, the other two gone (they handed their windows back).
    if [[ $(kubectl -n "$ns" get pods -l "$selector" -o name | wc -l) -eq 1 && $(ready_pods "$ns" "$selector" | wc -l) -eq 1 ]]; then break; fi
    ((SECONDS < deadline)) || { log "$fault: still not one windower 600 s after scaling down"; return 1; }
    sleep 1
  done
  while [[ $fault != operator-ha && $fault != windower-scale ]]; do
    after=$(ready_pods "$ns" "$selector")
    # Recovered: a Ready pod that was not Ready before (the sensor's: its Job's next pod, or the
    # run moved on because the deleted sensor's share had already been sent).
    if [[ -n $(comm -13 <(echo "$before") <(echo "$after")) ]]; then break; fi
    if [[ $fault == sensor ]] && [[ $(kubectl -n "$namespace" get pipelineexperiment "$name" -o jsonpath='{.status.phase}') != Running ]]; then break; fi
    ((SECONDS < deadline)) || { log "$fault: nothing replaced the pods within 600 s"; return 1; }
    sleep 1
  done
  echo $((SECONDS - started)) >"$row_dir/recovery"
  log "$fault: recovered in $((SECONDS - started)) s"
  if [[ $fault == operator-ha ]]; then
    kubectl -n "$operator_namespace" scale deployment/wattcast-operator --replicas 1 >/dev/null
  fi
}

run_row() {
  local fault=$1 status=0
  row_dir=$(mktemp -d)
  (E2E_CHECK_SECURITY=0 run_experiment "$EXPERIMENT_FILE" inject) 2>&1 | tee "$row_dir/log" || status=$?
  local counts recovery
  counts=$(sed -n 's/.* in PostgreSQL: sent \([0-9]*\) by [0-9]* sensors, stored \([0-9]*\), late \([0-9]*\), both \([0-9]*\), devices with forecasts [0-9]*, models \([0-9]*\).*/\1 \2 \3 \4 \5/p' "$row_dir/log" | tail -n1)
  recovery=$(cat "$row_dir/recovery" 2>/dev/null || echo null)
  local sent stored late both models
  read -r sent stored late both models <<<"${counts:-null null null null null}"
  local why=""
  ((status == 0)) || why=$(grep -m1 'FAILED: ' "$row_dir/log" | sed 's/.*FAILED: //' || true)
  jq -cn --arg fault "$fault" --arg what "$(describe "$fault")" --argjson sent "$sent" --argjson stored "$stored" \
    --argjson late "$late" --argjson both "$both" --argjson models "$models" --argjson recovery "$recovery" --argjson passed "$((status == 0))" --arg why "$why" \
    '{fault: $fault, what: $what, sent: $sent, stored: $stored, late: $late, stored_and_late: $both,
      lost: (if $sent == null then null else $sent - $stored - $late + $both end),
      models: $models, recovery_s: $recovery, passed: ($passed == 1), why: $why}' >"$row_dir/row"
  # A fault's new row replaces its row of an earlier run (E2E_FAULTS_APPEND=1).
  jq -c --arg fault "$fault" 'select(.fault != $fault)' "$results" >"$row_dir/others"
  cat "$row_dir/others" "$row_dir/row" >"$results"
  rm -rf "$row_dir"
  return "$status"
}

table() {
  echo "| fault | sent | stored | late | stored and late | lost | models | recovery (s) | outcome |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  # Rows in the order of FAULTS, whatever order they ran in.
  jq -s -r '(. | sort_by(.fault as $f | $ARGS.positional | index($f)))[]
    | "| \(.what) | \(.sent // "–") | \(.stored // "–") | \(.late // "–") | \(.stored_and_late // "–") | \(.lost // "–") | \(.models // "–") | \(.recovery_s // "–") | \(if .passed then "passed" else "**failed**: \(.why)" end) |"' --args "${FAULTS[@]}" <"$results"
}

faults_main() {
  if [[ ${1:-} == list ]]; then printf '%s\n' "${FAULTS[@]}"; return 0; fi
  if [[ ${1:-} == table ]]; then results=$out/faults-cluster.json; table; return 0; fi
  (($# > 0)) || set -- "${FAULTS[@]}"
  local fault failed=0
  for fault in "$@"; do
    [[ " ${FAULTS[*]} " == *" $fault "* ]] || { echo "e2e-faults: unknown fault '$fault' (faults: ${FAULTS[*]})" >&2; exit 2; }
  done
  mkdir -p "$out"
  results=$out/faults-cluster.json
  # E2E_FAULTS_APPEND=1 adds the rows to an earlier run's instead of starting a new table.
  [[ ${E2E_FAULTS_APPEND:-0} == 1 ]] || : >"$results"
  touch "$results"
  ensure_namespace "$namespace"
  for fault in "$@"; do
    log "=== fault: $fault"
    run_row "$fault" || failed=$((failed + 1))
  done
  table | tee "$out/faults-cluster.md"
  ((failed == 0)) || { log "$failed of $# faults failed"; exit 1; }
  log "every fault passed: nothing lost, nothing stored twice"
}

faults_main "$@"

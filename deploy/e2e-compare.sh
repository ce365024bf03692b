#!/usr/bin/env bash
# Checks that experiments run on a cluster counted what the same experiments count without one:
# readings sent, stored and late depend on the data and the watermark only, so the cluster's
# final status (written by deploy/e2e.sh to E2E_OUT/NAME.json) must equal `wattcast local`'s
# summary for the same file (against the test env's services), and, for Streaming, what
# `wattcast dataset window` gives for the same generated CSVs. Writes E2E_OUT/comparison.md.
#   deploy/e2e-compare.sh WATTCAST-BINARY EXPERIMENT.yaml...
set -euo pipefail

wattcast=${1:?usage: deploy/e2e-compare.sh WATTCAST-BINARY EXPERIMENT.yaml...}
shift
out=${E2E_OUT:-reports/e2e}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "[e2e-compare] $*"; }

table=$out/comparison.md
{
  echo "| experiment | where | sent | stored | late |"
  echo "| --- | --- | ---: | ---: | ---: |"
} >"$table"
mismatches=0

row() { echo "| $1 | $2 | $3 | $4 | $5 |" >>"$table"; }

compare() {
  local name=$1 where=$2 expected=$3 got=$4
  if [[ $expected != "$got" ]]; then
    log "$name: $where counted sent/stored/late $got, the cluster $expected"
    mismatches=$((mismatches + 1))
  fi
}

for file in "$@"; do
  name=$(sed -n 's/^  name: *//p' "$file" | head -n1)
  status=$out/$name.json
  [[ -f $status ]] || { log "no cluster result $status for $file; run deploy/e2e.sh first"; exit 1; }
  cluster=$(jq -r '.status.progress | "\(.readingsSent) \(.readingsStored) \(.lateReadings)"' "$status")
  read -r sent stored late <<<"$cluster"
  row "$name" cluster "$sent" "$stored" "$late"

  "$wattcast" local "$file" --drain-timeout 10m --summary-out "$work/$name.local.json" >"$work/$name.local.log" 2>&1 \
    || { log "wattcast local $file failed:"; tail -20 "$work/$name.local.log"; exit 1; }
  local_counts=$(jq -r '"\(.readings_sent) \(.readings_stored) \(.late)"' "$work/$name.local.json")
  # shellcheck disable=SC2086 # three numbers, split into three cells on purpose
  row "$name" "\`wattcast local\`" $local_counts
  compare "$name" "wattcast local" "$cluster" "$local_counts"

  spec=$(jq -c '.spec' "$status")
  if [[ $(jq -r '.architecture' <<<"$spec") == Streaming ]]; then
    scenario=$(jq -r '.dataset.scenario' <<<"$spec")
    case $scenario in
      MissingTimestamps) scenario=missing-timestamps ;;
      InOrder) scenario=in-order ;;
      *) log "$name: dataset scenario $scenario has no generator preview"; exit 1 ;;
    esac
    generate=(--scenario "$scenario" --devices "$(jq -r '.devices.count' <<<"$spec")"
      --duration "$(jq -r '.dataset.duration' <<<"$spec")" --seed "$(jq -r '.dataset.seed' <<<"$spec")")
    jitter=$(jq -r '.dataset.jitter // empty' <<<"$spec")
    [[ -n $jitter ]] && generate+=(--jitter "$jitter")
    "$wattcast" dataset generate "${generate[@]}" --out "$work/$name-data" >/dev/null 2>&1
    watermark=$(jq -r '.windowing.watermark | if .strategy == "BoundedOutOfOrderness" then "bounded:\(.maxOutOfOrderness)" else "monotonous" end' <<<"$spec")
    idle=$(jq -r '.windowing.watermark.idleTimeout // "1m"' <<<"$spec")
    size=$(jq -r '.windowing.size // "1m"' <<<"$spec")
    readings=0 windowed=0 late_total=0
    for csv in "$work/$name-data"/*.csv; do
      summary=$("$wattcast" dataset window --input "$csv" --watermark "$watermark" --idle-timeout "$idle" --window "$size" 2>/dev/null | tail -n1)
      readings=$((readings + $(jq -r '.summary.readings' <<<"$summary")))
      windowed=$((windowed + $(jq -r '.summary.windowed' <<<"$summary")))
      late_total=$((late_total + $(jq -r '.summary.late' <<<"$summary")))
    done
    row "$name" "\`wattcast dataset window --watermark $watermark\`" "$readings" "$windowed" "$late_total"
    compare "$name" "wattcast dataset window" "$cluster" "$readings $windowed $late_total"
  fi
  log "$name compared"
done
cat "$table"
((mismatches == 0)) || { log "$mismatches counts differ from the cluster's"; exit 1; }
log "the cluster counted what wattcast local and wattcast dataset window count"

# What each pod of the local node used, read from its cgroups (cgroup v1: cpuacct and memory):
# `sample_usage FILE` appends one line per pod every few seconds until stopped; `usage_table
# FILE` turns the samples into a table of CPU (seconds, and cores while the pod lived) and peak
# memory per pod, for docs/performance.md.
# shellcheck shell=bash

# sample_usage FILE [SECONDS]: lines of `epoch namespace/pod cpu_ns peak_memory_bytes`.
sample_usage() {
  local file=$1 every=${2:-5} names dir uid now
  while holder_alive; do
    now=$(date +%s)
    names=$(kubectl_node get pods -A -o jsonpath='{range .items[*]}{.metadata.uid} {.metadata.namespace}/{.metadata.name}{"\n"}{end}' 2>/dev/null || true)
    for dir in /sys/fs/cgroup/cpuacct/"$CGROUP_ROOT"/kubepods/pod* /sys/fs/cgroup/cpuacct/"$CGROUP_ROOT"/kubepods/*/pod*; do
      [[ -d $dir ]] || continue
      uid=${dir##*/pod}
      local name memory=${dir/\/cpuacct\//\/memory\/}
      name=$(awk -v uid="$uid" '$1 == uid {print $2}' <<<"$names")
      [[ -n $name ]] || continue
      echo "$now $name $(cat "$dir/cpuacct.usage" 2>/dev/null || echo 0) $(cat "$memory/memory.max_usage_in_bytes" 2>/dev/null || echo 0)"
    done >>"$file"
    sleep "$every"
  done
}

# usage_table FILE: one row per pod, heaviest first.
usage_table() {
  echo "| pod | lived (s) | CPU (s) | mean cores while it lived | peak memory (MiB) |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  awk '{
      pod = $2
      if (!(pod in first)) first[pod] = $1
      last[pod] = $1
      if ($3 > cpu[pod]) cpu[pod] = $3
      if ($4 > mem[pod]) mem[pod] = $4
    }
    END {
      for (pod in first) {
        lived = last[pod] - first[pod]
        seconds = cpu[pod] / 1e9
        printf "%s\t%d\t%.1f\t%.3f\t%.0f\n", pod, lived, seconds, (lived > 0 ? seconds / lived : 0), mem[pod] / 1048576
      }
    }' "$1" | sort -t$'\t' -k3,3nr | awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
}

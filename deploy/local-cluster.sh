#!/usr/bin/env bash
# A real single-node Kubernetes built here from packages, for `make e2e` where there is no Docker:
# containerd + runc, etcd, the control plane, kubelet, kube-proxy, CoreDNS and a local-path
# StorageClass, all inside network and mount namespaces of its own (addresses from
# 198.18.0.0/15 only, nothing routed off the machine, the machine's sysctls and cgroup mounts
# untouched). Builds are cached outside the checkout (test-env's Kubernetes build is shared).
#
#   deploy/local-cluster.sh up        build what is missing, start the node, wait until Ready
#   deploy/local-cluster.sh images    build the images and import them into the node
#   deploy/local-cluster.sh down      stop every process `up` started, by pid; remove its files
#   deploy/local-cluster.sh status    the node's processes and its Node object
#   deploy/local-cluster.sh kubectl … / helm …   run them against the node from the host
#   deploy/local-cluster.sh bin-dir   the directory whose kubectl and helm reach the node (for PATH)
#   deploy/local-cluster.sh sample-usage FILE [S] / usage-table FILE   each pod's CPU and peak
#                                     memory from its cgroups, sampled every S seconds
#
# Needs root (namespaces, cgroups, mounts). WATTCAST_BINARIES names the directory holding the
# release `wattcast` and `wattcast-operator` binaries for `images`.
set -euo pipefail
LOCAL_DIR=$(cd "$(dirname "$0")/local" && pwd)
REPO_DIR=$(cd "$LOCAL_DIR/../.." && pwd)
TEST_ENV_LIB=$REPO_DIR/test-env/lib
# shellcheck disable=SC2034 # read by elapsed() in test-env/lib/common.sh
TEST_ENV_STARTED=$(date +%s)
# shellcheck source=/dev/null
for part in "$TEST_ENV_LIB"/common.sh "$TEST_ENV_LIB"/gobuild.sh "$TEST_ENV_LIB"/packages.sh \
  "$TEST_ENV_LIB"/kube.sh "$TEST_ENV_LIB"/pulsar.sh "$TEST_ENV_LIB"/s3.sh \
  "$LOCAL_DIR"/build.sh "$LOCAL_DIR"/pki.sh "$LOCAL_DIR"/images.sh "$LOCAL_DIR"/node.sh "$LOCAL_DIR"/usage.sh; do
  source "$part"
done
log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() { printf '[local-cluster] error: %s\n' "$*" >&2; exit 1; }

NODE_PACKAGES=(libseccomp-dev containernetworking-plugins ipset mmdebstrap umoci skopeo iptables iproute2 util-linux openssl curl jq gcc)
WRAPPERS=$NODE_DIR/bin

need_root() { [[ $(id -u) -eq 0 ]] || die "the local node needs root (namespaces, cgroups, mounts)"; }

# Host-side kubectl and helm that reach the node's API through its network namespace.
write_wrappers() {
  mkdir -p "$WRAPPERS"
  local tool binary
  for tool in kubectl helm; do
    binary=$KUBE_ASSETS/kubectl
    [[ $tool == helm ]] && binary=$HELM_BIN
    cat >"$WRAPPERS/$tool" <<SH
#!/bin/sh
# Written by deploy/local-cluster.sh: $tool against the local node.
export KUBECONFIG=$NODE_DIR/kubeconfig
exec nsenter -t "\$(cat $HOLDER_PID_FILE)" -n -- $binary "\$@"
SH
    chmod 755 "$WRAPPERS/$tool"
  done
}

up() {
  need_root
  # shellcheck disable=SC2034 # read by install_packages
  PACKAGES=("${NODE_PACKAGES[@]}")
  install_packages
  build_node
  build_helm
  if holder_alive; then
    # Restart whatever stopped; a running daemon is left alone.
    log "the node's namespaces are up; starting any daemon that is not running"
    start_control_plane
    start_node_agents
    wait_for_node
    start_cluster_services
  else
    if [[ -d $NODE_DIR ]]; then
      log "cleaning up a node that is no longer running"
      stop_node
      remove_cgroups
      remove_node_files
    fi
    mkdir -p "$NODE_DIR"
    make_pki
    install -m 600 "$PKI/admin.kubeconfig" "$NODE_DIR/kubeconfig"
    make_cgroups
    start_holder
    write_configs
    start_control_plane
    start_node_agents
    import_image "$(image_pause)"
    import_image "$(image_base)"
    wait_for_node
    start_cluster_services
  fi
  write_wrappers
  log "up in $(elapsed)s. kubectl: deploy/local-cluster.sh kubectl …, or PATH=$WRAPPERS:\$PATH kubectl …"
}

images() {
  need_root
  holder_alive || die "the node is not up; run \`deploy/local-cluster.sh up\` first"
  local binaries=${WATTCAST_BINARIES:?set WATTCAST_BINARIES to the directory with the release binaries}
  [[ -x $binaries/wattcast && -x $binaries/wattcast-operator ]] \
    || die "no release binaries in $binaries; run \`make release\` first"
  install_pulsar
  install_s3s_fs
  import_image "$(image_rust_binary "$WATTCAST_LOCAL_IMAGE" "$binaries/wattcast")"
  import_image "$(image_rust_binary "$OPERATOR_LOCAL_IMAGE" "$binaries/wattcast-operator")"
  import_image "$(image_mosquitto)"
  import_image "$(image_postgres)"
  import_image "$(image_pulsar)"
  import_image "$(image_s3)"
  log "images imported ($(elapsed)s)"
}

# The chart values that point the operator at the images `images` imported.
image_values() {
  cat <<YAML
image: {repository: ${OPERATOR_LOCAL_IMAGE%:*}, tag: $LOCAL_IMAGE_TAG, pullPolicy: Never}
images:
  wattcast: $WATTCAST_LOCAL_IMAGE
  mosquitto: $MOSQUITTO_LOCAL_IMAGE
  pulsar: $PULSAR_LOCAL_IMAGE
  postgres: $POSTGRES_LOCAL_IMAGE
  rustfs: $S3_LOCAL_IMAGE
YAML
}

down() {
  need_root
  [[ -d $NODE_DIR ]] || { log "no local node"; return 0; }
  stop_node
  remove_cgroups
  remove_node_files
  log "down"
}

status() {
  local name
  for name in holder etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns local-path-provisioner kube-router; do
    if [[ -f $PIDS/$name ]] && kill -0 "$(cat "$PIDS/$name")" 2>/dev/null; then
      printf '%-24s running (pid %s)\n' "$name" "$(cat "$PIDS/$name")"
    else
      printf '%-24s stopped\n' "$name"
    fi
  done
  holder_alive && kubectl_node get node -o wide
}

command=${1:-}
shift || true
case $command in
  up) up ;;
  images) images ;;
  image-values) image_values ;;
  down) down ;;
  status) status ;;
  kubectl) holder_alive || die "the node is not up"; exec "$WRAPPERS/kubectl" "$@" ;;
  helm) holder_alive || die "the node is not up"; exec "$WRAPPERS/helm" "$@" ;;
  bin-dir) echo "$WRAPPERS" ;;
  sample-usage) holder_alive || die "the node is not up"; sample_usage "${1:?sample-usage FILE [SECONDS]}" "${2:-5}" ;;
  usage-table) usage_table "${1:?usage-table FILE}" ;;
  *) die "usage: $0 up | images | image-values | down | status | kubectl ARGS… | helm ARGS… | bin-dir | sample-usage FILE [S] | usage-table FILE" ;;
esac

#!/usr/bin/env bash
# The local cluster for `make e2e`: kind (default) or k3d (CLUSTER=k3d).
#   deploy/cluster.sh prereqs | up | load IMAGE... | down
set -euo pipefail

CLUSTER=${CLUSTER:-kind}
NAME=${CLUSTER_NAME:-wattcast}
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "cluster: $*" >&2; exit 1; }

# kind releases after kube-network-policies' fix of probes blocked by NetworkPolicies (2025-04).
KIND_MIN=0.29.0

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed: $2"
}

prereqs() {
  need docker "install Docker (https://docs.docker.com/engine/install/) and start it"
  docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer; start Docker (or add yourself to the docker group)"
  case $CLUSTER in
    kind)
      need kind "install kind ≥ $KIND_MIN (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
      local version
      version=$(kind version -q 2>/dev/null | sed 's/^v//; s/-.*//')
      if [[ $(printf '%s\n%s\n' "$KIND_MIN" "$version" | sort -V | head -n1) != "$KIND_MIN" ]]; then
        die "kind $version is too old: kind ≥ $KIND_MIN is needed (earlier kindnet network policies block kubelet probes of pods a policy selects, kube-network-policies issue 150; and kind 0.24+ enforces NetworkPolicies at all)"
      fi
      ;;
    k3d) need k3d "install k3d ≥ 5 (https://k3d.io/#installation)" ;;
    *) die "CLUSTER must be kind or k3d, not '$CLUSTER'" ;;
  esac
  need kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/)"
  need helm "install helm 3 (https://helm.sh/docs/intro/install/)"
}

exists() {
  case $CLUSTER in
    kind) kind get clusters 2>/dev/null | grep -qx "$NAME" ;;
    k3d) k3d cluster list "$NAME" >/dev/null 2>&1 ;;
  esac
}

up() {
  if exists; then
    echo "cluster: $CLUSTER cluster '$NAME' exists"
  else
    case $CLUSTER in
      kind) kind create cluster --name "$NAME" --config "$here/../kind-config.yaml" --wait 120s ;;
      # k3s ships a NetworkPolicy controller; its bundled Traefik is not needed.
      k3d) k3d cluster create "$NAME" --agents 0 --k3s-arg '--disable=traefik@server:0' --wait ;;
    esac
  fi
  case $CLUSTER in
    kind) kubectl config use-context "kind-$NAME" >/dev/null ;;
    k3d) kubectl config use-context "k3d-$NAME" >/dev/null ;;
  esac
  kubectl wait --for=condition=Ready nodes --all --timeout=120s
}

load() {
  [[ $# -gt 0 ]] || die "load needs image names"
  exists || die "no $CLUSTER cluster '$NAME'; run \`make kind-up\` first"
  case $CLUSTER in
    kind) kind load docker-image --name "$NAME" "$@" ;;
    k3d) k3d image import --cluster "$NAME" "$@" ;;
  esac
}

down() {
  if ! exists; then
    echo "cluster: no $CLUSTER cluster '$NAME'"
    return 0
  fi
  case $CLUSTER in
    kind) kind delete cluster --name "$NAME" ;;
    k3d) k3d cluster delete "$NAME" ;;
  esac
}

command=${1:-}
shift || true
case $command in
  prereqs) prereqs ;;
  up) up ;;
  load) load "$@" ;;
  down) down ;;
  *) die "usage: $0 prereqs | up | load IMAGE... | down" ;;
esac

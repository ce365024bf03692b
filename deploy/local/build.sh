# The local node's programs, built from their Go modules (and the pause image's C source) into
# the cache on the first run only. Kubernetes itself comes from test-env's one build.
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source this file

CONTAINERD_VERSION=v2.3.7
RUNC_VERSION=v1.5.2
COREDNS_VERSION=v1.14.7
LOCAL_PATH_VERSION=v0.0.30
# The only kube-router the module proxy serves here; it runs as the node's NetworkPolicy agent only.
KUBE_ROUTER_VERSION=v2.1.0

NODE_BIN=$CACHE_DIR/node-bin

build_containerd() {
  [[ -x $NODE_BIN/containerd && -x $NODE_BIN/ctr && -x $NODE_BIN/containerd-shim-runc-v2 ]] && return 0
  log "building containerd $CONTAINERD_VERSION from Go modules (first run only)"
  GO_BUILD_FLAGS=(-tags "no_btrfs urfave_cli_no_docs" -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION")
  CGO_ENABLED=0 go_build_module github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" "$NODE_BIN/" \
    github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/ctr \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    >"$CACHE_DIR/containerd-build.log" 2>&1 || die "building containerd failed; see $CACHE_DIR/containerd-build.log"
  log "containerd built ($(elapsed)s)"
}

build_runc() {
  [[ -x $NODE_BIN/runc ]] && return 0
  log "building runc $RUNC_VERSION from Go modules (first run only)"
  GO_BUILD_FLAGS=(-tags seccomp -ldflags "-s -w -X main.version=${RUNC_VERSION#v}")
  CGO_ENABLED=1 go_build_module github.com/opencontainers/runc "$RUNC_VERSION" "$NODE_BIN/runc" \
    github.com/opencontainers/runc \
    >"$CACHE_DIR/runc-build.log" 2>&1 || die "building runc failed; see $CACHE_DIR/runc-build.log"
  log "runc built ($(elapsed)s)"
}

build_coredns() {
  [[ -x $NODE_BIN/coredns ]] && return 0
  log "building CoreDNS $COREDNS_VERSION from Go modules (first run only)"
  GO_BUILD_FLAGS=(-ldflags "-s -w")
  CGO_ENABLED=0 go_build_module github.com/coredns/coredns "$COREDNS_VERSION" "$NODE_BIN/coredns" \
    github.com/coredns/coredns \
    >"$CACHE_DIR/coredns-build.log" 2>&1 || die "building CoreDNS failed; see $CACHE_DIR/coredns-build.log"
  log "CoreDNS built ($(elapsed)s)"
}

build_local_path_provisioner() {
  [[ -x $NODE_BIN/local-path-provisioner ]] && return 0
  log "building local-path-provisioner $LOCAL_PATH_VERSION from Go modules (first run only)"
  GO_BUILD_FLAGS=(-ldflags "-s -w")
  CGO_ENABLED=0 go_build_module github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION" \
    "$NODE_BIN/local-path-provisioner" github.com/rancher/local-path-provisioner \
    >"$CACHE_DIR/local-path-build.log" 2>&1 || die "building local-path-provisioner failed; see $CACHE_DIR/local-path-build.log"
  log "local-path-provisioner built ($(elapsed)s)"
}

# kube-router, run with only its network-policy controller: the CNI bridge has no policy of its own.
build_kube_router() {
  [[ -x $NODE_BIN/kube-router ]] && return 0
  log "building kube-router $KUBE_ROUTER_VERSION from Go modules (first run only)"
  GO_BUILD_FLAGS=(-ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION")
  CGO_ENABLED=0 go_build_module github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION" "$NODE_BIN/kube-router" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
    >"$CACHE_DIR/kube-router-build.log" 2>&1 || die "building kube-router failed; see $CACHE_DIR/kube-router-build.log"
  log "kube-router built ($(elapsed)s)"
}

# The sandbox ("pause") image's program, from the C source in the k8s.io/kubernetes module.
build_pause() {
  [[ -x $NODE_BIN/pause ]] && return 0
  local modroot
  modroot=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -f $modroot/build/pause/linux/pause.c ]] || die "pause.c not found in k8s.io/kubernetes@v$KUBERNETES_VERSION"
  mkdir -p "$NODE_BIN"
  gcc -Os -Wall -Werror -static -DVERSION="v$KUBERNETES_VERSION-wattcast" -o "$NODE_BIN/pause" "$modroot/build/pause/linux/pause.c" \
    || die "compiling pause failed"
  strip "$NODE_BIN/pause"
}

build_node() {
  build_kubernetes
  build_runc
  build_containerd
  build_coredns
  build_local_path_provisioner
  build_kube_router
  build_pause
}

# A real Kubernetes API server for the envtest crate, and helm: kube-apiserver and kubectl built
# from k8s.io/kubernetes (staging modules pinned to the matching v0.x by replace directives), etcd
# from go.etcd.io/etcd/server/v3, helm from helm.sh/helm/v3. The envtest crate starts the API
# server itself from KUBEBUILDER_ASSETS, with its downloading turned off. The same one build also
# makes the node's kubelet, controller manager, scheduler and kube-proxy (deploy/local-cluster.sh).
# shellcheck shell=bash
# shellcheck disable=SC2030,SC2031 # the Go settings are meant for the build subshells only

KUBE_ASSETS=$CACHE_DIR/kube-$KUBERNETES_VERSION/bin
HELM_BIN=$CACHE_DIR/helm-$HELM_VERSION/bin/helm
# envtest needs the first two; the local node (deploy/local-cluster.sh) all of them.
KUBERNETES_BINARIES=(kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy)

build_kubernetes() {
  local binary missing=0
  for binary in "${KUBERNETES_BINARIES[@]}"; do [[ -x $KUBE_ASSETS/$binary ]] || missing=1; done
  ((missing)) || return 0
  log "building ${KUBERNETES_BINARIES[*]} $KUBERNETES_VERSION from Go modules (first run only)"
  local src=$CACHE_DIR/kube-$KUBERNETES_VERSION/src
  go_module_init "$src" wattcast-test-env/kubernetes
  (
    cd "$src"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    local modfile
    modfile=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f $modfile ]] || die "could not download k8s.io/kubernetes@v$KUBERNETES_VERSION"
    # k8s.io/kubernetes replaces its staging modules with local paths; pin them to the release.
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$modfile" | awk '{print $1}' | sort -u | while read -r module; do
      go mod edit -replace "$module=$module@v$KUBERNETES_STAGING_VERSION"
    done
    go mod edit -require "k8s.io/kubernetes@v$KUBERNETES_VERSION"
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "${KUBERNETES_BINARIES[@]}"
      printf ')\n'
    } >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    local minor=${KUBERNETES_VERSION#*.}; minor=${minor%%.*}
    mkdir -p "$KUBE_ASSETS"
    go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/client-go/pkg/version.gitVersion=v$KUBERNETES_VERSION" \
      -o "$KUBE_ASSETS/" "${KUBERNETES_BINARIES[@]/#/k8s.io/kubernetes/cmd/}"
  ) >"$CACHE_DIR/kubernetes-build.log" 2>&1 || die "building Kubernetes failed; see $CACHE_DIR/kubernetes-build.log"
  log "Kubernetes built ($(elapsed)s)"
}

build_etcd() {
  [[ -x $KUBE_ASSETS/etcd ]] && return 0
  log "building etcd $ETCD_VERSION from Go modules (first run only)"
  local src=$CACHE_DIR/etcd-$ETCD_VERSION/src
  go_module_init "$src" wattcast-test-env/etcd
  (
    cd "$src"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    mkdir -p "$KUBE_ASSETS"
    go build -trimpath -ldflags "-s -w" -o "$KUBE_ASSETS/etcd" go.etcd.io/etcd/server/v3
  ) >"$CACHE_DIR/etcd-build.log" 2>&1 || die "building etcd failed; see $CACHE_DIR/etcd-build.log"
  log "etcd built ($(elapsed)s)"
}

build_helm() {
  [[ -x $HELM_BIN ]] && return 0
  log "building helm $HELM_VERSION from Go modules (first run only)"
  local src=$CACHE_DIR/helm-$HELM_VERSION/src
  go_module_init "$src" wattcast-test-env/helm
  (
    cd "$src"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    go get "helm.sh/helm/v3@v$HELM_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    mkdir -p "$(dirname "$HELM_BIN")"
    go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
      -o "$HELM_BIN" helm.sh/helm/v3/cmd/helm
  ) >"$CACHE_DIR/helm-build.log" 2>&1 || die "building helm failed; see $CACHE_DIR/helm-build.log"
  log "helm built ($(elapsed)s)"
}

check_kube_assets() {
  { "$KUBE_ASSETS/kube-apiserver" --version >/dev/null && "$KUBE_ASSETS/etcd" --version >/dev/null \
    && "$KUBE_ASSETS/kubectl" version --client >/dev/null && "$HELM_BIN" version >/dev/null; } \
    || die "the Kubernetes binaries in $KUBE_ASSETS or helm do not run; delete them and run test-env/up again"
  log "kube-apiserver, etcd, kubectl and helm are ready ($(elapsed)s)"
}

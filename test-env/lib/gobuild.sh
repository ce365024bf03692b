# Building Go programs from their published modules into the cache: a scratch module that
# requires the program's module, so Go's module and build caches make a second run quick.
# Shared by test-env (kube-apiserver, etcd, helm) and deploy/local-cluster.sh (the node).
# shellcheck shell=bash

# go_module_init DIR NAME: an empty scratch module in DIR.
go_module_init() {
  local dir=$1 name=$2
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$dir" && GOFLAGS=-mod=mod go mod init "$name" >/dev/null 2>&1)
}

# go_build_module MODULE VERSION OUT PACKAGE... : builds the main PACKAGEs of MODULE@VERSION into
# the directory OUT (or, with one package and OUT not a directory, into the file OUT). Extra
# `go build` flags come from GO_BUILD_FLAGS (an array), the environment from the caller.
go_build_module() {
  local module=$1 version=$2 out=$3; shift 3
  local name=${module##*/}
  local src=$CACHE_DIR/go-src/$name-$version
  go_module_init "$src" "wattcast-build/$name"
  (
    cd "$src" || exit 1
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    go get "$module@$version"
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      printf '\t_ "%s"\n' "$@"
      printf ')\n'
    } >tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
    if [[ $out == */ ]]; then mkdir -p "$out"; else mkdir -p "$(dirname "$out")"; fi
    go build -trimpath "${GO_BUILD_FLAGS[@]}" -o "$out" "$@"
  )
}

# Debian packages the services and the builds need.
# shellcheck shell=bash

PACKAGES=(mosquitto mosquitto-clients postgresql protobuf-compiler clang curl maven jq openssl socat shellcheck)

install_packages() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  command -v go >/dev/null || die "Go is required to build kube-apiserver, etcd and helm (it comes with this machine kind)"
  command -v java >/dev/null || die "Java 17 is required for Pulsar (it comes with this machine kind)"
  command -v cargo >/dev/null || die "cargo is required to build s3s-fs"
  (( ${#missing[@]} == 0 )) && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's postinst may start its own cluster and broker; the test env runs its own.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r version cluster; do
      "${sudo[@]}" pg_ctlcluster "$version" "$cluster" stop || true
    done
  fi
  pkill -f '^/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf' 2>/dev/null || true
  log "packages installed ($(elapsed)s)"
}

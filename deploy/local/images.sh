# Container images without Docker: Debian root filesystems made by mmdebstrap (from the machine's
# own Debian sources), turned into OCI images by umoci, copied to docker-archive tarballs by
# skopeo, and imported into the node's containerd. Every rootfs and image is cached by its inputs.
#
# The infrastructure images are local test images standing in for the official ones the chart
# uses (eclipse-mosquitto, postgres, apachepulsar/pulsar, rustfs/rustfs): each honours the part of
# its official image's interface the operator relies on (command, env, paths, user ids, ports), so
# the operator makes the same pod specs for both; see docs/contributing/testing.md.
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source this file

IMAGES_DIR=$CACHE_DIR/images
LOCAL_IMAGE_TAG=${LOCAL_IMAGE_TAG:-0.1.0-local}
# Debian's suite: the binaries built here link this machine's glibc.
IMAGE_SUITE=bookworm
# Users of the official images the pods run as (and the distroless nonroot user).
IMAGE_USERS=("mosquitto 1883" "postgres 70" "pulsar 10000" "rustfs 10001" "nonroot 65532")

PAUSE_IMAGE=registry.k8s.io/pause:wattcast-local
BASE_IMAGE=wattcast-local/base:$LOCAL_IMAGE_TAG
WATTCAST_LOCAL_IMAGE=ghcr.io/wattcast/wattcast:$LOCAL_IMAGE_TAG
OPERATOR_LOCAL_IMAGE=ghcr.io/wattcast/wattcast-operator:$LOCAL_IMAGE_TAG
MOSQUITTO_LOCAL_IMAGE=wattcast-local/mosquitto:$LOCAL_IMAGE_TAG
POSTGRES_LOCAL_IMAGE=wattcast-local/postgres:$LOCAL_IMAGE_TAG
PULSAR_LOCAL_IMAGE=wattcast-local/pulsar:$LOCAL_IMAGE_TAG
S3_LOCAL_IMAGE=wattcast-local/s3s-fs:$LOCAL_IMAGE_TAG

# rootfs NAME PACKAGE...: a cached minbase rootfs tarball with PACKAGEs; prints its path.
rootfs() {
  local name=$1; shift
  local key
  key=$(printf '%s\n' "$IMAGE_SUITE" "$@" "${IMAGE_USERS[@]}" | sha256sum | cut -c1-12)
  local tar=$IMAGES_DIR/rootfs/$name-$key.tar
  if [[ ! -f $tar ]]; then
    log "making the $name root filesystem with mmdebstrap (first run only)"
    mkdir -p "$IMAGES_DIR/rootfs"
    local include=ca-certificates
    (($# > 0)) && include+=",$(IFS=,; echo "$*")"
    local users='' entry
    for entry in "${IMAGE_USERS[@]}"; do
      # shellcheck disable=SC2086
      set -- $entry
      users+="if chroot \"\$1\" getent passwd $1 >/dev/null; then chroot \"\$1\" usermod -u $2 $1; chroot \"\$1\" groupmod -g $2 $1 2>/dev/null || true; else chroot \"\$1\" groupadd -g $2 $1; chroot \"\$1\" useradd -M -N -u $2 -g $2 -d /nonexistent -s /usr/sbin/nologin $1; fi; "
    done
    # shellcheck disable=SC2016 # "$1" is the hook's argument, expanded by mmdebstrap
    mmdebstrap --variant=minbase --include="$include" --aptopt='APT::Install-Recommends "false"' \
      --customize-hook="$users" \
      --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
      "$IMAGE_SUITE" "$tar.partial.tar" /etc/apt/sources.list.d/debian.sources \
      >"$IMAGES_DIR/rootfs/$name.log" 2>&1 || die "mmdebstrap for $name failed; see $IMAGES_DIR/rootfs/$name.log"
    mv "$tar.partial.tar" "$tar"
  fi
  echo "$tar"
}

# build_image REF ROOTFS-TAR EXTRA-DIR CONFIG-ARGS...: an OCI image of the rootfs plus the files
# under EXTRA-DIR (may be empty), saved as a docker-archive next to the OCI layout; prints its path.
build_image() {
  local ref=$1 base=$2 extra=$3; shift 3
  local name=${ref##*/}; name=${name//:/-}
  local key
  key=$( { echo "$ref $base $*"; [[ -n $extra ]] && find "$extra" -type f -exec sha256sum {} + | sort; } | sha256sum | cut -c1-16)
  local archive=$IMAGES_DIR/archives/$name-$key.tar
  if [[ ! -f $archive ]]; then
    log "building image $ref"
    mkdir -p "$IMAGES_DIR/archives"
    local layout=$IMAGES_DIR/oci/$name
    rm -rf "$layout"
    mkdir -p "$(dirname "$layout")"
    umoci init --layout "$layout"
    umoci new --image "$layout:image"
    if [[ -n $base ]]; then
      umoci raw add-layer --image "$layout:image" "$base"
    fi
    if [[ -n $extra ]]; then
      umoci insert --image "$layout:image" "$extra" /
    fi
    umoci config --image "$layout:image" --author wattcast --os linux --architecture amd64 "$@"
    skopeo copy --quiet "oci:$layout:image" "docker-archive:$archive.partial:$ref"
    mv "$archive.partial" "$archive"
    rm -rf "$layout"
  fi
  echo "$archive"
}

# import_image ARCHIVE: loads an image into the node's containerd (the CRI's namespace).
import_image() {
  in_node "$NODE_BIN/ctr" --address "$CONTAINERD_SOCKET" -n k8s.io images import --local "$1" >/dev/null \
    || die "importing $1 into containerd failed"
}

# The extra files of an image: a scratch directory laid out like the image's root.
image_files() {
  local dir=$IMAGES_DIR/files/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "$dir"
}

image_pause() {
  local files
  files=$(image_files pause)
  install -D -m 0755 "$NODE_BIN/pause" "$files/pause"
  build_image "$PAUSE_IMAGE" "" "$files" --config.entrypoint /pause --config.user 65535:65535
}

image_base() {
  build_image "$BASE_IMAGE" "$(rootfs base)" "" --config.cmd /bin/sh
}

# image_rust_binary REF BINARY: the distroless-like layout of deploy/Dockerfile's targets.
image_rust_binary() {
  local ref=$1 binary=$2 files
  files=$(image_files "${binary##*/}")
  install -D -m 0755 "$binary" "$files/usr/local/bin/${binary##*/}"
  # Line tables are for backtraces on the build machine; the image does without them.
  strip --strip-debug "$files/usr/local/bin/${binary##*/}"
  build_image "$ref" "$(rootfs base)" "$files" --config.user 65532:65532 \
    --config.entrypoint "/usr/local/bin/${binary##*/}" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

image_mosquitto() {
  build_image "$MOSQUITTO_LOCAL_IMAGE" "$(rootfs mosquitto mosquitto mosquitto-clients)" "" --config.user 1883:1883 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd mosquitto --config.cmd -c --config.cmd /mosquitto/config/mosquitto.conf
}

image_postgres() {
  local files bin=/usr/lib/postgresql/15/bin
  files=$(image_files postgres)
  install -D -m 0755 "$LOCAL_DIR/images/postgres-entrypoint.sh" "$files/usr/local/bin/docker-entrypoint.sh"
  build_image "$POSTGRES_LOCAL_IMAGE" "$(rootfs postgres postgresql-15)" "$files" --config.user 70:70 \
    --config.env "PATH=$bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.env PGDATA=/var/lib/postgresql/data --config.entrypoint docker-entrypoint.sh --config.cmd postgres
}

image_pulsar() {
  local files
  files=$(image_files pulsar)
  mkdir -p "$files/pulsar/lib" "$files/pulsar/conf"
  cp "$PULSAR_HOME"/lib/*.jar "$files/pulsar/lib/"
  install -D -m 0755 "$LOCAL_DIR/images/pulsar" "$files/pulsar/bin/pulsar"
  install -m 0644 "$LOCAL_DIR/images/pulsar-standalone.conf" "$files/pulsar/conf/standalone.conf"
  build_image "$PULSAR_LOCAL_IMAGE" "$(rootfs pulsar openjdk-17-jre-headless)" "$files" --config.user 10000:0 \
    --config.workingdir /pulsar --config.env PULSAR_HOME=/pulsar \
    --config.env PATH=/pulsar/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

image_s3() {
  local files
  files=$(image_files s3s-fs)
  install -D -m 0755 "$S3S_ROOT/bin/s3s-fs" "$files/usr/local/bin/s3s-fs"
  install -D -m 0755 "$LOCAL_DIR/images/s3s-fs-entrypoint.sh" "$files/usr/local/bin/s3-entrypoint.sh"
  build_image "$S3_LOCAL_IMAGE" "$(rootfs base)" "$files" --config.user 10001:10001 \
    --config.entrypoint /usr/local/bin/s3-entrypoint.sh
}

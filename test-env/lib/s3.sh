# S3: s3s-fs from crates.io (RustFS itself needs a newer rustc; the Helm chart deploys RustFS) on
# 127.0.0.1:9000 with generated keys, data in the run directory.
# shellcheck shell=bash

S3S_ROOT=$CACHE_DIR/s3s-fs-$S3S_FS_VERSION
S3_DIR=$RUN_DIR/s3

install_s3s_fs() {
  [[ -x $S3S_ROOT/bin/s3s-fs ]] && return 0
  log "building s3s-fs $S3S_FS_VERSION from crates.io (first run only)"
  cargo install --quiet --locked --version "$S3S_FS_VERSION" --features binary --root "$S3S_ROOT" \
    --target-dir "$CACHE_DIR/cargo-target" s3s-fs >"$CACHE_DIR/s3s-fs-build.log" 2>&1 \
    || die "building s3s-fs failed; see $CACHE_DIR/s3s-fs-build.log"
  log "s3s-fs built ($(elapsed)s)"
}

start_s3() {
  local pidfile=$S3_DIR/s3s-fs.pid
  if pid_alive "$pidfile"; then
    log "s3 already running"
    return 0
  fi
  port_open "$S3_PORT" && die "port $S3_PORT is taken by another process; stop it or point the tests at your S3 (docs/contributing/testing.md)"
  install_s3s_fs
  mkdir -p "$S3_DIR/data"
  (
    nohup "$S3S_ROOT/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" \
      --access-key "$S3_ACCESS_KEY" --secret-key "$S3_SECRET_KEY" "$S3_DIR/data" \
      >"$S3_DIR/s3s-fs.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  )
  wait_until 30 s3 port_open "$S3_PORT" || die "s3s-fs did not start; see $S3_DIR/s3s-fs.log"
}

stop_s3() { stop_pidfile s3 "$S3_DIR/s3s-fs.pid"; }

# TLS for the test env: a CA generated once per machine, a server certificate it signs for
# 127.0.0.1 and localhost, and a second CA that signs nothing (the "wrong CA" of the tests).
# Mosquitto (8883), PostgreSQL (5432 with ssl=on), Pulsar (6651, admin 8443) and S3 (9443,
# socat terminating TLS in front of s3s-fs, which has no TLS of its own) listen with it.
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source this file

TLS_DIR=$RUN_DIR/tls
MQTT_TLS_PORT=8883
PULSAR_TLS_PORT=6651
PULSAR_ADMIN_TLS_PORT=8443
S3_TLS_PORT=9443

# new_ca NAME: a self-signed P-256 CA, NAME.crt and NAME.key.
new_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=wattcast test-env $1" -keyout "$TLS_DIR/$1.key" -out "$TLS_DIR/$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
}

make_tls_files() {
  # Remade when missing or expiring within a day (they last ten years).
  if [[ -f $TLS_DIR/server.crt && -f $TLS_DIR/other-ca.crt ]] \
    && openssl x509 -checkend 86400 -noout -in "$TLS_DIR/server.crt" >/dev/null 2>&1; then
    return 0
  fi
  log "generating the test env's CA and server certificate"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 755 "$TLS_DIR"
  new_ca ca
  new_ca other-ca
  # PKCS#8 key (Pulsar's Java TLS needs it; openssl 3 writes it by default).
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" 2>/dev/null
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$TLS_DIR/server.ext"
  openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.crt" -CAkey "$TLS_DIR/ca.key" \
    -CAcreateserial -days 3650 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.crt" 2>/dev/null
  rm -f "$TLS_DIR/server.csr" "$TLS_DIR/ca.key" "$TLS_DIR/other-ca.key" "$TLS_DIR/ca.srl"
  chmod 644 "$TLS_DIR"/*.crt
  chmod 600 "$TLS_DIR/server.key"
  # Services that read the files before a restart get the new ones: restart them.
  TLS_FILES_CHANGED=1
}

# copy_server_files DIR OWNER: the server certificate and key where a service may read them.
copy_server_files() {
  local dir=$1 owner=$2
  install -m 644 "$TLS_DIR/server.crt" "$dir/server.crt"
  install -m 644 "$TLS_DIR/ca.crt" "$dir/ca.crt"
  install -m 600 "$TLS_DIR/server.key" "$dir/server.key"
  if [[ $(id -u) -eq 0 && -n $owner ]]; then
    chown "$owner": "$dir/server.crt" "$dir/server.key" "$dir/ca.crt"
  fi
}

S3_TLS_PIDFILE=$RUN_DIR/s3/socat-tls.pid

start_s3_tls() {
  if pid_alive "$S3_TLS_PIDFILE" && [[ -z ${TLS_FILES_CHANGED:-} ]]; then
    log "s3 TLS proxy already running"
    return 0
  fi
  stop_pidfile "s3 TLS proxy" "$S3_TLS_PIDFILE"
  port_open "$S3_TLS_PORT" && die "port $S3_TLS_PORT is taken by another process; stop it (docs/contributing/testing.md)"
  mkdir -p "$RUN_DIR/s3"
  (
    nohup socat "OPENSSL-LISTEN:$S3_TLS_PORT,bind=127.0.0.1,reuseaddr,fork,cert=$TLS_DIR/server.crt,key=$TLS_DIR/server.key,verify=0" \
      "TCP:127.0.0.1:$S3_PORT" >"$RUN_DIR/s3/socat-tls.log" 2>&1 </dev/null &
    echo $! >"$S3_TLS_PIDFILE"
  )
  # Any HTTP answer (s3s-fs refuses unsigned requests) proves TLS works end to end.
  wait_until 30 "s3 TLS proxy" curl -sS -o /dev/null --cacert "$TLS_DIR/ca.crt" "https://127.0.0.1:$S3_TLS_PORT/" \
    || die "socat did not start; see $RUN_DIR/s3/socat-tls.log"
}

stop_s3_tls() { stop_pidfile "s3 TLS proxy" "$S3_TLS_PIDFILE"; }

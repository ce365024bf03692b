# Mosquitto from Debian's package: our own config on 127.0.0.1:1883 and, with the test env's
# certificate, TLS on 127.0.0.1:8883; password auth only.
# shellcheck shell=bash

MOSQUITTO_DIR=$RUN_DIR/mosquitto

start_mosquitto() {
  local pidfile=$MOSQUITTO_DIR/mosquitto.pid
  if pid_alive "$pidfile" && port_open "$MQTT_TLS_PORT" && [[ -z ${TLS_FILES_CHANGED:-} ]]; then
    log "mosquitto already running"
    return 0
  fi
  # Started before it had a TLS listener, or with older certificates: start it again.
  stop_mosquitto
  port_open "$MQTT_PORT" && die "port $MQTT_PORT is taken by another MQTT broker; stop it or point the tests at it (docs/contributing/testing.md)"
  mkdir -p "$MOSQUITTO_DIR"
  # A fresh store each start, as for Pulsar; the fault matrix restarts a crashed broker on its
  # store (MOSQUITTO_KEEP_DATA=1, test-env/fault).
  [[ -n ${MOSQUITTO_KEEP_DATA:-} ]] || rm -rf "$MOSQUITTO_DIR/data"
  mkdir -p "$MOSQUITTO_DIR/data"
  # mosquitto_passwd hashes with the installed version's scheme, so the file always matches.
  rm -f "$MOSQUITTO_DIR/passwd"
  touch "$MOSQUITTO_DIR/passwd"
  chmod 600 "$MOSQUITTO_DIR/passwd"
  copy_server_files "$MOSQUITTO_DIR" ""
  mosquitto_passwd -b "$MOSQUITTO_DIR/passwd" "$MQTT_USERNAME" "$MQTT_PASSWORD"
  cat >"$MOSQUITTO_DIR/mosquitto.conf" <<CONF
# Written by test-env/up.
listener $MQTT_PORT 127.0.0.1
listener $MQTT_TLS_PORT 127.0.0.1
cafile $MOSQUITTO_DIR/ca.crt
certfile $MOSQUITTO_DIR/server.crt
keyfile $MOSQUITTO_DIR/server.key
allow_anonymous false
password_file $MOSQUITTO_DIR/passwd
# As the operator's Mosquitto: sessions and queued QoS 1 messages saved, every 5 s, so a broker
# that crashes comes back with the bridge's session (and queues for it) rather than dropping
# what sensors send until the bridge subscribes again.
persistence true
persistence_location $MOSQUITTO_DIR/data/
autosave_interval 5
pid_file $pidfile
log_dest file $MOSQUITTO_DIR/mosquitto.log
max_queued_messages 100000
# The bridge acknowledges a QoS 1 message only once Pulsar has it: with Mosquitto's default of
# 20 messages in flight per client, Pulsar's confirm latency capped the bridge near 2,000/s.
max_inflight_messages 1000
CONF
  if [[ $(id -u) -eq 0 ]]; then
    # As root, Mosquitto drops to its own user, which must read its files.
    chown -R mosquitto: "$MOSQUITTO_DIR"
  fi
  mosquitto -c "$MOSQUITTO_DIR/mosquitto.conf" -d
  wait_until 30 mosquitto mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -u "$MQTT_USERNAME" -P "$MQTT_PASSWORD" -t wattcast/health -m up -q 1 \
    || die "mosquitto did not start; see $MOSQUITTO_DIR/mosquitto.log"
  wait_until 30 "mosquitto TLS" mosquitto_pub -h 127.0.0.1 -p "$MQTT_TLS_PORT" --cafile "$TLS_DIR/ca.crt" -u "$MQTT_USERNAME" -P "$MQTT_PASSWORD" -t wattcast/health -m up -q 1 \
    || die "mosquitto's TLS listener does not answer; see $MOSQUITTO_DIR/mosquitto.log"
}

stop_mosquitto() { stop_pidfile mosquitto "$MOSQUITTO_DIR/mosquitto.pid"; }

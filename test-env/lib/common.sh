# Shared by test-env/up and test-env/down: paths, logging, waiting, secrets.
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables set here are used by the scripts that source this file

# Downloads and builds (Maven repository, Go builds, s3s-fs): kept between runs, outside the checkout.
CACHE_DIR=${WATTCAST_TEST_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wattcast-test-env}
# Service data, configs, logs and pid files. As root, services that drop privileges (Mosquitto)
# or refuse root (PostgreSQL) must reach them, and root's home is private, so they live in
# /var/cache; otherwise beside the downloads.
if [[ $(id -u) -eq 0 ]]; then
  RUN_DIR=${WATTCAST_TEST_ENV_RUN:-/var/cache/wattcast-test-env}
else
  RUN_DIR=${WATTCAST_TEST_ENV_RUN:-$CACHE_DIR/run}
fi
TEST_ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_FILE=$TEST_ENV_DIR/.env
SECRETS_FILE=$RUN_DIR/secrets.env

# Pinned versions (see docs/contributing/testing.md for why these).
PULSAR_VERSION=4.0.7
S3S_FS_VERSION=0.14.1
KUBERNETES_VERSION=1.36.3
KUBERNETES_STAGING_VERSION=0.36.3
ETCD_VERSION=3.6.16
HELM_VERSION=3.22.0
FLINK_VERSION=1.17.2

MQTT_PORT=1883
POSTGRES_PORT=5432
PULSAR_PORT=6650
PULSAR_ADMIN_PORT=8080
PULSAR_BOOKIE_PORT=3181
S3_PORT=9000

log() { printf '[test-env] %s\n' "$*" >&2; }
die() { printf '[test-env] error: %s\n' "$*" >&2; exit 1; }

# Pulsar's embedded bookie refuses writes above 99 % disk use (diskUsageThreshold in
# standalone.conf), and then every topic creation fails with "Not enough non-faulty bookies":
# warn from 95 %, and at 99 % stop here, naming the cause, instead of letting every test fail
# with Pulsar's message.
check_disk_space() {
  local used
  used=$(df --output=pcent "${RUN_DIR:-$CACHE_DIR}" 2>/dev/null | tail -n1 | tr -dc '0-9')
  [[ -n $used ]] || return 0
  if [[ $used -ge 99 ]]; then
    die "the disk is ${used}% full: Pulsar's bookie refuses writes above 99%, so every test that uses Pulsar would fail. Free space (e.g. old test binaries under \$CARGO_TARGET_DIR/debug/deps) and run again."
  fi
  if [[ $used -ge 95 ]]; then
    log "warning: the disk is ${used}% full; Pulsar's bookie refuses writes above 99%."
    log "warning: free space (e.g. old test binaries under \$CARGO_TARGET_DIR/debug/deps) before running tests."
  fi
}

# Seconds since the script started, for the timing lines in docs/contributing/testing.md.
elapsed() { echo $(( $(date +%s) - ${TEST_ENV_STARTED:-$(date +%s)} )); }

# wait_until SECONDS DESCRIPTION COMMAND...: retries COMMAND every second.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      return 1
    fi
    sleep 1
  done
  log "$what is ready ($(elapsed)s)"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A random alphanumeric secret.
random_secret() { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "${1:-24}"; }

# Credentials are generated once per machine and kept with the services' data, because the
# services (PostgreSQL's cluster, Mosquitto's password file, S3 keys) were set up with them.
load_secrets() {
  mkdir -p "$RUN_DIR"
  chmod 755 "$RUN_DIR"
  if [[ ! -f $SECRETS_FILE ]]; then
    umask 077
    {
      echo "MQTT_USERNAME=wattcast"
      echo "MQTT_PASSWORD=$(random_secret)"
      echo "POSTGRES_SUPERUSER_PASSWORD=$(random_secret)"
      echo "POSTGRES_USER=wattcast"
      echo "POSTGRES_PASSWORD=$(random_secret)"
      echo "S3_ACCESS_KEY=$(random_secret 20)"
      echo "S3_SECRET_KEY=$(random_secret 40)"
    } >"$SECRETS_FILE"
    umask 022
  fi
  # A second PostgreSQL user whose password has every character a URL gives meaning to, so a
  # test proves credentials are percent-encoded wherever a URL is built (added to older files).
  if ! grep -q '^POSTGRES_ENCODED_PASSWORD=' "$SECRETS_FILE"; then
    echo "POSTGRES_ENCODED_PASSWORD='$(random_secret 16)@:/#%?'" >>"$SECRETS_FILE"
  fi
  # shellcheck disable=SC1090
  source "$SECRETS_FILE"
}

# stop_pidfile NAME FILE: stops the process a pid file names, if it runs.
stop_pidfile() {
  local name=$1 file=$2 pid
  [[ -f $file ]] || return 0
  pid=$(head -n1 "$file")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

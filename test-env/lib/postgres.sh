# PostgreSQL from Debian's package: our own cluster on 127.0.0.1:5432 with password auth, TLS
# (ssl=on, the test env's certificate; clients choose with sslmode) and a `wattcast` role and
# database; or, when another server already listens there, a role and database made on it.
# shellcheck shell=bash

POSTGRES_DIR=$RUN_DIR/postgres
POSTGRES_OWN_MARKER=$POSTGRES_DIR/own-cluster

postgres_bin() {
  local bin
  # shellcheck disable=SC2012 # version directories (16, 17): plain names, sorted by version
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [[ -n $bin ]] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
  echo "$bin"
}

# Runs a command as the postgres user when we are root (PostgreSQL refuses to run as root).
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bin data=$POSTGRES_DIR/data socket=$POSTGRES_DIR/socket
  bin=$(postgres_bin)
  if [[ -f $POSTGRES_OWN_MARKER ]] && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 \
    && { [[ -n ${TLS_FILES_CHANGED:-} ]] || ! postgres_has_tls; }; then
    # Started before it had TLS, or with older certificates: start it again.
    log "restarting postgres with TLS"
    as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
  if [[ -f $POSTGRES_OWN_MARKER ]] && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "postgres already running"
  elif port_open "$POSTGRES_PORT"; then
    log "another PostgreSQL listens on $POSTGRES_PORT: reusing it with its own role and database"
    rm -f "$POSTGRES_OWN_MARKER"
    reuse_foreign_postgres
    return 0
  else
    mkdir -p "$POSTGRES_DIR" "$socket"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$POSTGRES_DIR" "$socket"
    if [[ ! -f $data/PG_VERSION ]]; then
      local pwfile=$POSTGRES_DIR/superuser-password
      printf '%s\n' "$POSTGRES_SUPERUSER_PASSWORD" >"$pwfile"
      chmod 600 "$pwfile"
      [[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
      as_postgres "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=peer --encoding=UTF8 --no-instructions >/dev/null
      rm -f "$pwfile"
    fi
    touch "$POSTGRES_OWN_MARKER"
    start_own_cluster || die "postgres did not start; see $POSTGRES_DIR/postgres.log"
  fi
  create_role_and_database as_postgres "$bin/psql" -h "$socket" -p "$POSTGRES_PORT" -U postgres -d postgres
  wait_until 30 postgres env PGPASSWORD="$POSTGRES_PASSWORD" "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d wattcast -c 'select 1'
}

# Whether the running cluster has ssl on (asked over its socket as the superuser).
postgres_has_tls() {
  [[ $(as_postgres "$(postgres_bin)/psql" -h "$POSTGRES_DIR/socket" -p "$POSTGRES_PORT" -U postgres -d postgres -tAc 'show ssl' 2>/dev/null) == on ]]
}

# Starts the cluster test-env/up made (also used by test-env/pause-postgres).
start_own_cluster() {
  copy_server_files "$POSTGRES_DIR" postgres
  as_postgres "$(postgres_bin)/pg_ctl" -D "$POSTGRES_DIR/data" -l "$POSTGRES_DIR/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$POSTGRES_PORT -c unix_socket_directories=$POSTGRES_DIR/socket -c max_connections=200 -c shared_buffers=128MB -c fsync=off -c synchronous_commit=off -c ssl=on -c ssl_cert_file=$POSTGRES_DIR/server.crt -c ssl_key_file=$POSTGRES_DIR/server.key" \
    start >/dev/null
}

# create_role_and_database PSQL-COMMAND...: idempotently makes the wattcast role and database.
create_role_and_database() {
  "$@" -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$POSTGRES_USER') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$POSTGRES_USER')\gexec
ALTER ROLE "$POSTGRES_USER" LOGIN PASSWORD '$POSTGRES_PASSWORD';
SELECT format('CREATE DATABASE wattcast OWNER %I', '$POSTGRES_USER') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'wattcast')\gexec
SELECT 'CREATE ROLE wattcast_encoded LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wattcast_encoded')\gexec
ALTER ROLE wattcast_encoded LOGIN PASSWORD '$POSTGRES_ENCODED_PASSWORD';
SQL
}

reuse_foreign_postgres() {
  local bin
  bin=$(postgres_bin)
  if [[ -n ${WATTCAST_TEST_ENV_POSTGRES_ADMIN_URL:-} ]]; then
    create_role_and_database "$bin/psql" "$WATTCAST_TEST_ENV_POSTGRES_ADMIN_URL"
  elif [[ $(id -u) -eq 0 ]] && runuser -u postgres -- "$bin/psql" -p "$POSTGRES_PORT" -d postgres -c 'select 1' >/dev/null 2>&1; then
    create_role_and_database runuser -u postgres -- "$bin/psql" -p "$POSTGRES_PORT" -d postgres
  else
    die "a PostgreSQL server listens on $POSTGRES_PORT but the test env cannot administer it: set WATTCAST_TEST_ENV_POSTGRES_ADMIN_URL=postgres://superuser:password@127.0.0.1:$POSTGRES_PORT/postgres, or stop it"
  fi
  wait_until 30 postgres env PGPASSWORD="$POSTGRES_PASSWORD" "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d wattcast -c 'select 1' \
    || die "the existing PostgreSQL does not accept password logins from 127.0.0.1 for $POSTGRES_USER"
}

stop_postgres() {
  [[ -f $POSTGRES_OWN_MARKER ]] || return 0
  local bin
  bin=$(postgres_bin)
  if as_postgres "$bin/pg_ctl" -D "$POSTGRES_DIR/data" status >/dev/null 2>&1; then
    log "stopping postgres"
    as_postgres "$bin/pg_ctl" -D "$POSTGRES_DIR/data" -m fast -w stop >/dev/null
  fi
}

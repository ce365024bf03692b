#!/bin/sh
# The local PostgreSQL test image's entrypoint: the part of the official image's
# docker-entrypoint.sh the operator relies on. On an empty PGDATA it creates the cluster with
# POSTGRES_USER as superuser (password POSTGRES_PASSWORD, scram-sha-256 over TCP) and the
# database POSTGRES_DB; then it runs the command (`postgres`) listening on every address.
set -eu
if [ "${1:-postgres}" != postgres ]; then
  exec "$@"
fi
shift || true
: "${PGDATA:?PGDATA must be set}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
user=${POSTGRES_USER:-postgres}
database=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --no-instructions
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$database" != postgres ]; then
    echo "CREATE DATABASE \"$database\" OWNER \"$user\";" | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
fi
exec postgres -c listen_addresses='*' "$@"

#!/usr/bin/env bash
# A real PostgreSQL 15 (Debian's) for development and tests, in a project-local cluster.
#
#   scripts/postgres.sh start    initdb if needed, start on 127.0.0.1:$PG_PORT (55432), create the database
#   scripts/postgres.sh stop     stop the server this checkout started, by its PID
#   scripts/postgres.sh status
#
# The cluster lives in .tickflow/postgres; its superuser is `tickflow` with trust authentication on
# 127.0.0.1 only (a development cluster, never exposed). As root, the server runs as the `postgres`
# system user, since PostgreSQL refuses to run as root.
source "$(dirname "$0")/lib.sh"

PG_PORT="${PG_PORT:-55432}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DB="${PG_DB:-tickflow}"
PGDATA="$STATE/postgres/data"
PIDFILE="$STATE/postgres.pid"
LOGS="$STATE/logs"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U tickflow; }

start() {
  if pid_alive "$PIDFILE"; then
    wait_until 60 "postgres ready" ready || die "postgres (pid $(cat "$PIDFILE")) runs but does not accept connections; see $LOGS/postgres.log"
    return 0
  fi
  [ -x "$PG_BIN/postgres" ] || apt_install postgresql-15
  require_free_port "$PG_PORT" PG_PORT "PostgreSQL"
  mkdir -p "$STATE/postgres" "$LOGS"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$STATE/postgres"; touch "$LOGS/postgres.log"; chown postgres: "$LOGS/postgres.log"; fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U tickflow --auth=trust -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1 \
      || { cat "$LOGS/initdb.log" >&2; die "initdb failed"; }
  fi
  local started=$SECONDS
  # The socket goes into the data directory: no need for /var/run/postgresql.
  as_pg setsid "$PG_BIN/postgres" -D "$PGDATA" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$PGDATA" -c max_connections=200 -c shared_buffers=256MB \
    >>"$LOGS/postgres.log" 2>&1 &
  if ! wait_until 60 "postgres ready" ready; then
    tail -n 20 "$LOGS/postgres.log" >&2
    die "postgres did not become ready within 60 s; see $LOGS/postgres.log"
  fi
  # The postmaster's own PID (not the runuser wrapper's) is what we stop by.
  head -n 1 "$PGDATA/postmaster.pid" >"$PIDFILE"
  "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U tickflow -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1 \
    || "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U tickflow "$PG_DB"
  log "postgres ready in $((SECONDS - started))s (pid $(cat "$PIDFILE")), database $PG_DB on 127.0.0.1:$PG_PORT"
}

case "${1:-}" in
  start) start ;;
  # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to disconnect).
  stop) stop_pid "$PIDFILE" postgres INT ;;
  status) if pid_alive "$PIDFILE" && ready; then echo "postgres running (pid $(cat "$PIDFILE"))"; else echo "postgres not running"; exit 1; fi ;;
  *) die "usage: scripts/postgres.sh start|stop|status" ;;
esac

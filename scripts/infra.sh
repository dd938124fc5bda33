#!/usr/bin/env bash
# Starts (or stops) the local infrastructure: a real Pulsar and a real PostgreSQL.
#
#   scripts/infra.sh up     install what is missing, start both, write .tickflow/env and print it
#   scripts/infra.sh down   stop what this checkout started
source "$(dirname "$0")/lib.sh"

case "${1:-}" in
  up)
    bash "$ROOT/scripts/deps.sh"
    bash "$ROOT/scripts/postgres.sh" start
    bash "$ROOT/scripts/pulsar.sh" start
    cat >"$STATE/env" <<ENV
# Written by scripts/infra.sh: how to reach the local infrastructure. Source it: . .tickflow/env
export PULSAR_URL=pulsar://127.0.0.1:${PULSAR_BROKER_PORT:-6650}
export PULSAR_ADMIN_URL=http://127.0.0.1:${PULSAR_WEB_PORT:-8080}
export DATABASE_URL=postgres://tickflow@127.0.0.1:${PG_PORT:-55432}/${PG_DB:-tickflow}
ENV
    cat "$STATE/env"
    ;;
  down)
    bash "$ROOT/scripts/pulsar.sh" stop
    bash "$ROOT/scripts/postgres.sh" stop
    ;;
  *) die "usage: scripts/infra.sh up|down" ;;
esac

#!/usr/bin/env bash
# The whole gate, as CI runs it: formatting, lints, then every test against a real Pulsar and a
# real PostgreSQL. Starts the infrastructure if it is not running and stops what it started.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash scripts/deps.sh

log "gate: cargo fmt --check"
cargo fmt --all -- --check
log "gate: cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "gate: deployment files (Compose schema, kustomize build, Kubernetes schemas, our rules)"
bash scripts/deploy-check.sh

started=()
pid_alive "$STATE/postgres.pid" || started+=(postgres)
pid_alive "$STATE/pulsar.pid" || started+=(pulsar)
cleanup() {
  local rc=$?
  for s in "${started[@]}"; do bash "scripts/$s.sh" stop || true; done
  if [ $rc -ne 0 ] && [ -f "$STATE/logs/pulsar.log" ]; then
    log "last lines of the Pulsar log:"; tail -n 30 "$STATE/logs/pulsar.log" >&2 || true
  fi
  exit $rc
}
trap cleanup EXIT
bash scripts/infra.sh up >/dev/null
# shellcheck disable=SC1091
source "$STATE/env"

# Each sink test makes a database of its own (tickflow_test_*); drop those of earlier runs.
for db in $(psql "$DATABASE_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'tickflow\_test\_%'"); do
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
done

log "tests (the end-to-end test runs the workspace's binaries, which cargo test builds first)"
export TICKFLOW_PYVENV="${TICKFLOW_PYVENV:-$CACHE/pyvenv}"
cargo test --workspace --locked
# This one kills and restarts the broker, so it runs alone, after everything else.
log "tests: broker kill and restart"
cargo test --locked -p tickflow-pulsar --test broker_restart -- --ignored --test-threads=1

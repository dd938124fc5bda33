#!/usr/bin/env bash
# Runs the benchmarks against the infrastructure of `make infra`; results go to docs/benchmarks.md by hand.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# shellcheck disable=SC1091
source "$STATE/env"
export PULSAR_HOME="$CACHE/apache-pulsar-${PULSAR_VERSION:-4.0.8}"
cargo bench -p tickflow-schema --bench codec
cargo bench -p tickflow-pulsar --bench publish
cargo bench -p kraken-ingester --bench parse
cargo bench -p kraken-ingester --bench e2e
cargo bench -p oanda-ingester --bench parse
cargo bench -p oanda-ingester --bench e2e
cargo bench -p timescale-sink --bench sink
cargo bench -p dukascopy-backfill --bench decode
cargo bench -p dukascopy-backfill --bench e2e
cargo bench -p control-plane --bench api
# The whole pipeline runs the services' release binaries as processes (target/release/<name>).
cargo build --release --locked --bins
cargo bench -p tickflow-e2e --bench pipeline

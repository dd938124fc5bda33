# tickflow: the commands a user types. See README.md.
.PHONY: up infra down test bench fuzz deps

## Start everything tickflow needs (today: Pulsar and PostgreSQL; the services join as they land).
up: infra
	@echo "tickflow infrastructure is up; connection settings are in .tickflow/env (source it)."

## Start only Pulsar and PostgreSQL and write .tickflow/env.
infra:
	@bash scripts/infra.sh up

## Stop what make started.
down:
	@bash scripts/infra.sh down

## The whole gate: fmt, clippy, every test against real Pulsar and PostgreSQL. CI runs this.
test:
	@bash scripts/test.sh

## Benchmarks (not tests): codec, producer vs pulsar-perf, Kraken frame parsing and end to end.
bench: infra
	@bash scripts/bench.sh

## Fuzz the venue decoders with libFuzzer (nightly + cargo-fuzz; FUZZ_SECONDS per target, default 60).
fuzz:
	@bash scripts/fuzz.sh

## Install system packages (protoc, JDK, PostgreSQL, Maven).
deps:
	@bash scripts/deps.sh

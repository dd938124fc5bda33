# tickflow: the commands a user types. See README.md.
.PHONY: up demo down status logs infra test bench fuzz deploy-check deps

## Start Pulsar, PostgreSQL and the five services against the live venues (OANDA only with its
## credentials in OANDA_API_TOKEN / OANDA_ACCOUNT_ID). Logs: .tickflow/logs/. Stop: make down.
up:
	@bash scripts/stack.sh up

## The same, offline: venue-sim plays Kraken, OANDA and Dukascopy; adds BTC/USD, ETH/USD, EUR/USD
## and USD/JPY with three days of history, then prints where to look.
demo:
	@bash scripts/stack.sh demo

## Stop everything make started (services by their recorded PIDs, then Pulsar and PostgreSQL).
down:
	@bash scripts/stack.sh down

## What runs, and whether each service is ready.
status:
	@bash scripts/stack.sh status

## Follow every service's log.
logs:
	@tail -n 20 -F .tickflow/logs/*.log

## Start only Pulsar and PostgreSQL and write .tickflow/env.
infra:
	@bash scripts/infra.sh up

## The whole gate: fmt, clippy, deployment checks, every test against real Pulsar and PostgreSQL. CI runs this.
test:
	@bash scripts/test.sh

## Benchmarks (not tests): codec, producer, venue parsing, the services end to end.
bench: infra
	@bash scripts/bench.sh

## Fuzz the venue decoders with libFuzzer (nightly + cargo-fuzz; FUZZ_SECONDS per target, default 60).
fuzz:
	@bash scripts/fuzz.sh

## Validate docker-compose.yml and k8s/ offline (Compose schema, kustomize build, Kubernetes schemas).
deploy-check:
	@bash scripts/deploy-check.sh

## Install system packages (protoc, JDK, PostgreSQL, Maven).
deps:
	@bash scripts/deps.sh

#!/usr/bin/env bash
# Installs the system packages tickflow builds and tests with: protoc (the pulsar crate and our
# schema crate generate code with it), a JDK 17 past JDK-8351933 (17.0.17+) for the Pulsar broker,
# PostgreSQL 15 and Maven. Idempotent: installs only what is missing.
source "$(dirname "$0")/lib.sh"

apt_install protobuf-compiler postgresql-15 postgresql-client-15 maven curl ca-certificates

# Debian's 17.0.15 is affected by JDK-8351933, which the Pulsar README warns can destabilise the
# broker. Upgrade when the installed JDK is older than 17.0.17.
jv=$(java -version 2>&1 | sed -n 's/.*version "\([0-9.]*\)".*/\1/p' | head -1)
patch=${jv##*.}
if [ -z "$jv" ] || { [ "${jv%%.*}" = 17 ] && [ "${patch:-0}" -lt 17 ]; }; then
  log "JDK ${jv:-none} predates the JDK-8351933 fix; upgrading openjdk-17"
  if [ ! -f "$STATE/.apt-updated" ]; then as_root apt-get update -qq; touch "$STATE/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    openjdk-17-jdk-headless openjdk-17-jre-headless >/dev/null
fi
# A Python virtualenv with grpcio and grpcio-reflection: the control plane's test drives the API
# with a client built only from server reflection.
PYVENV="${TICKFLOW_PYVENV:-$CACHE/pyvenv}"
if ! "$PYVENV/bin/python" -c 'import grpc, grpc_reflection' 2>/dev/null; then
  log "making the Python virtualenv $PYVENV (grpcio, grpcio-reflection)"
  if ! python3 -m venv "$PYVENV" >/dev/null 2>&1; then apt_install python3-venv; python3 -m venv "$PYVENV"; fi
  "$PYVENV/bin/pip" install -q --disable-pip-version-check grpcio grpcio-reflection protobuf
fi

log "deps ready: $(protoc --version), java $(java -version 2>&1 | sed -n 's/.*version "\(.*\)".*/\1/p' | head -1), $(/usr/lib/postgresql/15/bin/postgres --version)"

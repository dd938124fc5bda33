#!/usr/bin/env bash
# A real Apache Pulsar 4.0 standalone for development and tests, from Maven Central.
#
#   scripts/pulsar.sh fetch   download and unpack the server distribution into the cache
#   scripts/pulsar.sh start   start a standalone broker on 127.0.0.1 (no functions worker), wait until healthy
#   scripts/pulsar.sh stop    stop the broker this checkout started, by its PID
#   scripts/pulsar.sh kill    SIGKILL it (tests use this to crash the broker mid-stream)
#   scripts/pulsar.sh status  say whether it runs
#
# Ports come from PULSAR_BROKER_PORT (6650), PULSAR_WEB_PORT (8080) and PULSAR_BOOKIE_PORT (3181).
# Data lives in .tickflow/pulsar (wiped by `start` when TICKFLOW_PULSAR_FRESH=1), logs in .tickflow/logs.
source "$(dirname "$0")/lib.sh"

# 4.0.8 is the newest 4.0.x (LTS) whose server distribution Maven Central serves (4.0.9+ are absent).
PULSAR_VERSION="${PULSAR_VERSION:-4.0.8}"
PULSAR_BROKER_PORT="${PULSAR_BROKER_PORT:-6650}"
PULSAR_WEB_PORT="${PULSAR_WEB_PORT:-8080}"
PULSAR_BOOKIE_PORT="${PULSAR_BOOKIE_PORT:-3181}"
PULSAR_HOME="$CACHE/apache-pulsar-$PULSAR_VERSION"
PIDFILE="$STATE/pulsar.pid"
DATA="$STATE/pulsar"
LOGS="$STATE/logs"
ADMIN="http://127.0.0.1:$PULSAR_WEB_PORT/admin/v2"

fetch() {
  [ -x "$PULSAR_HOME/bin/pulsar" ] && return 0
  command -v mvn >/dev/null || die "mvn not found: run scripts/deps.sh first"
  local dl="$CACHE/download"
  mkdir -p "$dl"
  log "fetching Apache Pulsar $PULSAR_VERSION server distribution from Maven Central (about 230 MB, once)"
  mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.apache.pulsar:pulsar-server-distribution:$PULSAR_VERSION:tar.gz:bin" \
    -DoutputDirectory="$dl" -Dmdep.overWriteReleases=false \
    || die "could not fetch org.apache.pulsar:pulsar-server-distribution:$PULSAR_VERSION from Maven Central; set PULSAR_VERSION to another 4.0.x release"
  tar xzf "$dl/pulsar-server-distribution-$PULSAR_VERSION-bin.tar.gz" -C "$CACHE"
  # The tarball stays in ~/.m2 for a later re-unpack; the copy here is no longer needed.
  rm -f "$dl/pulsar-server-distribution-$PULSAR_VERSION-bin.tar.gz"
  [ -x "$PULSAR_HOME/bin/pulsar" ] || die "unpacked distribution has no bin/pulsar at $PULSAR_HOME"
}

healthy() {
  [ "$(curl -sf --max-time 10 "$ADMIN/brokers/health")" = ok ] &&
    curl -sf --max-time 5 "$ADMIN/namespaces/public" | grep -q 'public/default'
}

start() {
  if pid_alive "$PIDFILE"; then
    healthy || wait_until 180 "pulsar healthy" healthy || die "pulsar (pid $(cat "$PIDFILE")) runs but is not healthy; see $LOGS/pulsar.log"
    return 0
  fi
  fetch
  # The bookie turns read-only at 95% disk use ("Not enough non-faulty bookies" on every write).
  mkdir -p "$STATE"
  used=$(df --output=pcent "$STATE" | tail -1 | tr -dc '0-9')
  if [ "${used:-0}" -ge 90 ]; then
    log "WARNING: the disk holding $STATE is ${used}% full; Pulsar stops accepting writes at 95% (free space, e.g. cargo clean)"
  fi
  require_free_port "$PULSAR_BROKER_PORT" PULSAR_BROKER_PORT "Pulsar binary protocol"
  require_free_port "$PULSAR_WEB_PORT" PULSAR_WEB_PORT "Pulsar admin HTTP"
  require_free_port "$PULSAR_BOOKIE_PORT" PULSAR_BOOKIE_PORT "Pulsar bookie"
  [ "${TICKFLOW_PULSAR_FRESH:-0}" = 1 ] && rm -rf "$DATA"
  mkdir -p "$DATA" "$LOGS"
  local conf="$DATA/standalone.conf"
  # Start from the shipped standalone.conf (its quorum settings suit one bookie); later keys win.
  cp "$PULSAR_HOME/conf/standalone.conf" "$conf"
  cat >> "$conf" <<CONF

# --- tickflow overrides ---
bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=$PULSAR_BROKER_PORT
webServicePort=$PULSAR_WEB_PORT
brokerDeleteInactiveTopicsEnabled=false
brokerDeduplicationEnabled=false
# Tests and benchmarks leave large backlogs behind; disk, not a quota, is the limit here.
backlogQuotaDefaultLimitBytes=-1
backlogQuotaDefaultLimitGB=-1
CONF
  local started=$SECONDS
  (
    cd "$PULSAR_HOME"
    export PULSAR_STANDALONE_CONF="$conf"
    export PULSAR_LOG_DIR="$LOGS"
    export PULSAR_MEM="${PULSAR_MEM:--Xms512m -Xmx1g -XX:MaxDirectMemorySize=1g}"
    export PULSAR_GC="${PULSAR_GC:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1 -XX:+DisableExplicitGC}"
    export PULSAR_GC_LOG=" "
    exec setsid bin/pulsar standalone -nfw -nss -a 127.0.0.1 \
      --metadata-dir "$DATA/metadata" --bookkeeper-dir "$DATA/bookkeeper" \
      --bookkeeper-port "$PULSAR_BOOKIE_PORT"
  ) >"$LOGS/pulsar.log" 2>&1 &
  echo $! >"$PIDFILE"
  log "pulsar $PULSAR_VERSION starting (pid $!), log $LOGS/pulsar.log"
  local limit="${TICKFLOW_PULSAR_START_TIMEOUT:-240}"
  if ! wait_until "$limit" "pulsar healthy" healthy; then
    pid_alive "$PIDFILE" || { tail -n 40 "$LOGS/pulsar.log" >&2; rm -f "$PIDFILE"; die "pulsar exited during start-up; see $LOGS/pulsar.log"; }
    die "pulsar not healthy after ${limit}s; see $LOGS/pulsar.log"
  fi
  local secs=$((SECONDS - started))
  local rss; rss=$(ps -o rss= -p "$(cat "$PIDFILE")" | tr -d ' ')
  log "pulsar healthy in ${secs}s, broker RSS $((rss / 1024)) MiB"
  printf 'start_seconds=%s rss_mib=%s version=%s\n' "$secs" "$((rss / 1024))" "$PULSAR_VERSION" >"$STATE/pulsar.startup"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop_pid "$PIDFILE" pulsar ;;
  kill)
    pid_alive "$PIDFILE" || die "no pulsar started by this checkout is running"
    pid=$(cat "$PIDFILE"); log "killing pulsar (pid $pid) with SIGKILL"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$PIDFILE" ;;
  status) if pid_alive "$PIDFILE" && healthy; then echo "pulsar running (pid $(cat "$PIDFILE")), healthy"; else echo "pulsar not running"; exit 1; fi ;;
  *) die "usage: scripts/pulsar.sh fetch|start|stop|kill|status" ;;
esac

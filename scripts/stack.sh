#!/usr/bin/env bash
# The whole of tickflow as local processes: Pulsar, PostgreSQL and the five services.
#
#   scripts/stack.sh up       the live venues (Kraken; OANDA only when OANDA_API_TOKEN and
#                             OANDA_ACCOUNT_ID, or their _FILE variants, are set; Dukascopy)
#   scripts/stack.sh demo     offline: venue-sim plays Kraken, OANDA and Dukascopy; adds BTC/USD,
#                             ETH/USD, EUR/USD and USD/JPY with DEMO_HISTORY_DAYS (3) days of history
#   scripts/stack.sh status   what runs, and whether it is ready
#   scripts/stack.sh down     stop the services (by the PIDs this checkout recorded), then the infra
#
# Logs: .tickflow/logs/<service>.log. Settings for tickctl and psql: . .tickflow/env
# Ports: gRPC 50051 (TICKFLOW_GRPC_PORT); admin 9100..9104 (TICKFLOW_<SERVICE>_PORT, e.g.
# TICKFLOW_KRAKEN_INGESTER_PORT); venue-sim admin 9200 and venues 9201..9203 (TICKFLOW_SIM_KRAKEN_PORT, ...).
# Not <SERVICE>_..._PORT: a variable under a service's own prefix is a config key to it, and an
# unknown key stops it.
source "$(dirname "$0")/lib.sh"

LOGS="$STATE/logs"
RUN="$STATE/run"
mkdir -p "$LOGS" "$RUN"

GRPC_PORT="${TICKFLOW_GRPC_PORT:-50051}"
CONTROL_ADMIN_PORT="${TICKFLOW_CONTROL_PLANE_PORT:-9100}"
KRAKEN_ADMIN_PORT="${TICKFLOW_KRAKEN_INGESTER_PORT:-9101}"
OANDA_ADMIN_PORT="${TICKFLOW_OANDA_INGESTER_PORT:-9102}"
BACKFILL_ADMIN_PORT="${TICKFLOW_DUKASCOPY_BACKFILL_PORT:-9103}"
SINK_ADMIN_PORT="${TICKFLOW_TIMESCALE_SINK_PORT:-9104}"
SIM_ADMIN_PORT="${TICKFLOW_VENUE_SIM_PORT:-9200}"
SIM_KRAKEN_PORT="${TICKFLOW_SIM_KRAKEN_PORT:-9201}"
SIM_OANDA_PORT="${TICKFLOW_SIM_OANDA_PORT:-9202}"
SIM_DUKASCOPY_PORT="${TICKFLOW_SIM_DUKASCOPY_PORT:-9203}"
SERVICES=(venue-sim control-plane timescale-sink dukascopy-backfill kraken-ingester oanda-ingester)
BIN="${TICKFLOW_BIN_DIR:-$ROOT/target/release}"

# admin_port SERVICE: where SERVICE serves /healthz, /readyz and /metrics.
admin_port() {
  case "$1" in
    control-plane) echo "$CONTROL_ADMIN_PORT" ;;
    kraken-ingester) echo "$KRAKEN_ADMIN_PORT" ;;
    oanda-ingester) echo "$OANDA_ADMIN_PORT" ;;
    dukascopy-backfill) echo "$BACKFILL_ADMIN_PORT" ;;
    timescale-sink) echo "$SINK_ADMIN_PORT" ;;
    venue-sim) echo "$SIM_ADMIN_PORT" ;;
  esac
}

ready() { curl -fs -o /dev/null "http://127.0.0.1:$1/readyz"; }
alive() { curl -fs -o /dev/null "http://127.0.0.1:$1/healthz"; }

build() {
  if [ -n "${TICKFLOW_BIN_DIR:-}" ]; then
    return 0
  fi
  log "building the services (release; the first build takes several minutes)"
  (cd "$ROOT" && cargo build --release --locked --quiet \
    -p control-plane -p kraken-ingester -p oanda-ingester -p dukascopy-backfill \
    -p timescale-sink -p tickctl -p venue-sim)
}

# The API token: made once per checkout, kept in .tickflow/api-token (mode 600), never printed.
api_token() {
  local file="$STATE/api-token"
  if [ -n "${TICKFLOW_API_TOKEN:-}" ]; then
    printf '%s' "$TICKFLOW_API_TOKEN" >"$file"
  elif [ ! -s "$file" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n' >"$file")
  fi
  chmod 600 "$file"
}

# launch SERVICE VAR=VALUE...: start SERVICE in the background with the given environment, logging
# to .tickflow/logs/SERVICE.log, its PID in .tickflow/run/SERVICE.pid; wait until it is ready.
# With WAIT=alive, wait only until it answers /healthz (a live ingester is ready once its venue
# answers, and an unreachable venue must not stop `make up`).
launch() {
  local service=$1; shift
  local wait=${WAIT:-ready}
  local pidfile="$RUN/$service.pid" port
  port=$(admin_port "$service")
  if pid_alive "$pidfile"; then
    log "$service is already running (pid $(cat "$pidfile"))"
    return 0
  fi
  require_free_port "$port" "$(echo "TICKFLOW_${service}_PORT" | tr 'a-z-' 'A-Z_')" "$service admin"
  printf '\n==== %s started %s ====\n' "$service" "$(date -u +%FT%TZ)" >>"$LOGS/$service.log"
  env "$@" RUST_LOG="${RUST_LOG:-info}" TICKFLOW_API_TOKEN_FILE="$STATE/api-token" \
    setsid "$BIN/$service" >>"$LOGS/$service.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if ! wait_until 90 "$service is $wait on :$port" "$wait" "$port"; then
    tail -n 30 "$LOGS/$service.log" >&2 || true
    die "$service did not become $wait within 90 s; its log is $LOGS/$service.log"
  fi
  if [ "$wait" = alive ] && ! wait_until 15 "$service is ready on :$port" ready "$port"; then
    log "$service runs but is not ready yet: $(curl -s "http://127.0.0.1:$port/readyz" | head -c 300) (make status; its log is $LOGS/$service.log)"
  fi
}

start() {
  local mode=$1
  bash "$ROOT/scripts/infra.sh" up >/dev/null
  # shellcheck disable=SC1091
  source "$STATE/env"
  build
  api_token
  require_free_port_unless_ours "$GRPC_PORT" control-plane TICKFLOW_GRPC_PORT "control plane gRPC"

  local kraken_url dukascopy_url oanda=() oanda_enabled=0
  if [ "$mode" = demo ]; then
    launch venue-sim VENUE_SIM_HOST=127.0.0.1 VENUE_SIM_ADMIN_PORT="$SIM_ADMIN_PORT" \
      VENUE_SIM_KRAKEN_PORT="$SIM_KRAKEN_PORT" VENUE_SIM_OANDA_PORT="$SIM_OANDA_PORT" \
      VENUE_SIM_DUKASCOPY_PORT="$SIM_DUKASCOPY_PORT" VENUE_SIM_RATE="${DEMO_RATE:-5}" \
      VENUE_SIM_HISTORY_DAYS="${DEMO_HISTORY_DAYS:-3}"
    kraken_url="ws://127.0.0.1:$SIM_KRAKEN_PORT/v2"
    dukascopy_url="http://127.0.0.1:$SIM_DUKASCOPY_PORT"
    oanda=(OANDA_STREAM_URL="http://127.0.0.1:$SIM_OANDA_PORT" OANDA_API_TOKEN=demo-token-not-a-secret
      OANDA_ACCOUNT_ID=101-000-0000000-001)
    oanda_enabled=1
  else
    kraken_url="${KRAKEN_WS_URL:-wss://ws.kraken.com/v2}"
    dukascopy_url="${DUKASCOPY_URL:-}"
    if { [ -n "${OANDA_API_TOKEN:-}" ] || [ -n "${OANDA_API_TOKEN_FILE:-}" ]; } &&
      { [ -n "${OANDA_ACCOUNT_ID:-}" ] || [ -n "${OANDA_ACCOUNT_ID_FILE:-}" ]; }; then
      oanda_enabled=1
    else
      log "OANDA_API_TOKEN / OANDA_ACCOUNT_ID are not set: oanda-ingester is not started (forex live ticks need them)"
    fi
  fi

  local common=(PULSAR_URL="$PULSAR_URL" PULSAR_ADMIN_URL="$PULSAR_ADMIN_URL")
  local control=(CONTROL_PLANE_URL="http://127.0.0.1:$GRPC_PORT")
  local follow=()
  # The simulator publishes an hour as soon as it ends; Dukascopy itself takes about 90 minutes.
  [ "$mode" = demo ] && follow=(CONTROL_PLANE_FOLLOW_DELAY_SECS=120)
  launch control-plane "${common[@]}" DATABASE_URL="$DATABASE_URL" \
    CONTROL_PLANE_LISTEN="127.0.0.1:$GRPC_PORT" CONTROL_PLANE_ADMIN_LISTEN="127.0.0.1:$CONTROL_ADMIN_PORT" \
    "${follow[@]}"
  # Topics that exist before the stack's first start hold someone else's data (make test's):
  # the sink and the backfill join them at their end. Their own positions are kept.
  log "skipping data the local stack never subscribed to: $(python3 "$ROOT/scripts/skip_backlog.py" \
    "$PULSAR_ADMIN_URL" timescale-sink market-data/realtime market-data/historical)"
  curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/json' \
    "$PULSAR_ADMIN_URL/admin/v2/persistent/market-data/control/backfill-jobs/subscription/dukascopy-backfill" 2>/dev/null || true
  launch timescale-sink "${common[@]}" DATABASE_URL="$DATABASE_URL" \
    TIMESCALE_SINK_ADMIN_LISTEN="127.0.0.1:$SINK_ADMIN_PORT"
  local duka=()
  [ -n "$dukascopy_url" ] && duka=(DUKASCOPY_URL="$dukascopy_url")
  # The ingesters and the backfill read Pulsar's admin URL from their own config section.
  launch dukascopy-backfill "${common[@]}" "${duka[@]}" DUKASCOPY_BACKFILL_PULSAR__ADMIN_URL="$PULSAR_ADMIN_URL" \
    DUKASCOPY_BACKFILL_ADMIN_LISTEN="127.0.0.1:$BACKFILL_ADMIN_PORT"
  local ingester_wait=ready
  [ "$mode" = live ] && ingester_wait=alive
  WAIT=$ingester_wait launch kraken-ingester "${common[@]}" "${control[@]}" KRAKEN_WS_URL="$kraken_url" \
    KRAKEN_INGESTER_PULSAR__ADMIN_URL="$PULSAR_ADMIN_URL" \
    KRAKEN_INGESTER_ADMIN_LISTEN="127.0.0.1:$KRAKEN_ADMIN_PORT"
  if [ "$oanda_enabled" = 1 ]; then
    WAIT=$ingester_wait launch oanda-ingester "${common[@]}" "${control[@]}" "${oanda[@]}" \
      OANDA_INGESTER_PULSAR__ADMIN_URL="$PULSAR_ADMIN_URL" \
      OANDA_INGESTER_ADMIN_LISTEN="127.0.0.1:$OANDA_ADMIN_PORT"
  fi

  cat >"$STATE/env" <<ENV
# Written by scripts/infra.sh and scripts/stack.sh: how to reach local tickflow. Source it: . .tickflow/env
export PULSAR_URL=$PULSAR_URL
export PULSAR_ADMIN_URL=$PULSAR_ADMIN_URL
export DATABASE_URL=$DATABASE_URL
export TICKFLOW_ENDPOINT=http://127.0.0.1:$GRPC_PORT
export TICKFLOW_HTTP_ENDPOINT=http://127.0.0.1:$CONTROL_ADMIN_PORT
export TICKFLOW_API_TOKEN="\$(cat '$STATE/api-token')"
export PATH="$BIN:\$PATH"
ENV

  if [ "$mode" = demo ]; then
    demo_symbols
  fi
  summary "$mode"
}

# require_free_port_unless_ours PORT SERVICE VAR WHAT: PORT may be taken only by our own SERVICE.
require_free_port_unless_ours() {
  pid_alive "$RUN/$2.pid" || require_free_port "$1" "$3" "$4"
}

tickctl() { TICKFLOW_ENDPOINT="http://127.0.0.1:$GRPC_PORT" TICKFLOW_HTTP_ENDPOINT="http://127.0.0.1:$CONTROL_ADMIN_PORT" \
  TICKFLOW_API_TOKEN="$(cat "$STATE/api-token")" "$BIN/tickctl" "$@"; }

demo_symbols() {
  local since
  since=$(date -u -d "${DEMO_HISTORY_DAYS:-3} days ago" +%F)
  log "adding the demo symbols (history from $since)"
  # An already registered symbol is fine on a second `make demo`.
  tickctl symbols add BTC/USD --source kraken --source dukascopy --since "$since" || true
  tickctl symbols add ETH/USD --source kraken --source dukascopy --since "$since" || true
  tickctl symbols add EUR/USD --source oanda --source dukascopy --since "$since" || true
  tickctl symbols add USD/JPY --source oanda --source dukascopy --since "$since" || true
}

summary() {
  cat <<TXT

tickflow is running ($1). Logs: $LOGS/<service>.log   Stop: make down

  . .tickflow/env                         # endpoints, token and PATH for tickctl
  tickctl symbols list                    # symbols, sources, the replica that owns each
  tickctl symbols show BTC/USD            # last tick, ticks/s, the venue's last error
  tickctl tail BTC/USD                    # live ticks as they are published
  tickctl backfill list                   # history jobs and their progress
  psql "\$DATABASE_URL" -c "SELECT symbol, count(*), max(time) FROM trades GROUP BY symbol"
  psql "\$DATABASE_URL" -c "SELECT * FROM trade_candles_1m WHERE symbol = 'BTC/USD' ORDER BY bucket DESC LIMIT 5"
  psql "\$DATABASE_URL" -c "SELECT symbol, status, count(*) FROM coverage GROUP BY 1, 2 ORDER BY 1, 2"

Metrics and health: http://127.0.0.1:{$CONTROL_ADMIN_PORT..$SINK_ADMIN_PORT}/metrics, /healthz, /readyz
TXT
  if [ "$1" = demo ] && [ "$(date -u +%u)" -ge 6 ]; then
    echo "  (It is the weekend: the forex market is closed, so EUR/USD and USD/JPY get history but no live prices.)"
  fi
}

status() {
  local s port pidfile
  for s in "${SERVICES[@]}"; do
    pidfile="$RUN/$s.pid"
    port=$(admin_port "$s")
    if pid_alive "$pidfile"; then
      if ready "$port"; then state=ready; else state="running, not ready"; fi
      printf '%-20s pid %-8s :%-6s %s\n' "$s" "$(cat "$pidfile")" "$port" "$state"
    else
      printf '%-20s %s\n' "$s" "stopped"
    fi
  done
}

stop_services() {
  local s pidfile pid i
  # The ingesters first, the control plane and the sink last, so nothing in flight is abandoned.
  for s in oanda-ingester kraken-ingester dukascopy-backfill venue-sim timescale-sink control-plane; do
    pidfile="$RUN/$s.pid"
    if pid_alive "$pidfile"; then
      pid=$(cat "$pidfile")
      kill -TERM "$pid"
      for i in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
      done
      if kill -0 "$pid" 2>/dev/null; then
        log "$s (pid $pid) did not stop within 10 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      log "stopped $s (pid $pid)"
    fi
    rm -f "$pidfile"
  done
}

case "${1:-}" in
  up) start live ;;
  demo) start demo ;;
  status) status ;;
  down)
    stop_services
    bash "$ROOT/scripts/infra.sh" down
    ;;
  *) die "usage: scripts/stack.sh up|demo|status|down" ;;
esac

# Shared helpers for tickflow's local infrastructure scripts. Sourced, never run.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${TICKFLOW_STATE_DIR:-$ROOT/.tickflow}"
CACHE="${TICKFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tickflow}"
mkdir -p "$STATE" "$CACHE"

log() { printf '[tickflow] %s\n' "$*" >&2; }
die() { printf '[tickflow] error: %s\n' "$*" >&2; exit 1; }

# as_root CMD...: run as root (directly when we are root, else through sudo).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: install Debian packages that are missing, running apt-get update once per run.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ ! -f "$STATE/.apt-updated" ]; then
    as_root apt-get update -qq
    touch "$STATE/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT (or any address).
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# require_free_port PORT VAR WHAT: stop with a clear message when PORT is taken by a process we did not start.
require_free_port() {
  if port_in_use "$1"; then
    die "port $1 ($3) is already in use by a process tickflow did not start; leave it alone and choose another port: export $2=<free port> and run again"
  fi
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s until it succeeds or time runs out.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
  log "$what (after ${SECONDS}s of this script)"
}

# stop_pid FILE NAME: stop the process recorded in FILE with SIGTERM, then SIGKILL after a grace period.
stop_pid() {
  # stop_pid PIDFILE NAME [SIGNAL]: SIGNAL (default TERM), then SIGKILL after 60 s.
  local file=$1 name=$2 signal=${3:-TERM}
  if ! pid_alive "$file"; then rm -f "$file"; return 0; fi
  local pid; pid=$(cat "$file")
  log "stopping $name (pid $pid)"
  kill -"$signal" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 60))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name did not stop within 60 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$file"
}

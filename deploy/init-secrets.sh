#!/usr/bin/env bash
# Writes the secret files that docker-compose.yml mounts as compose secrets:
#
#   tickflow_api_token   the control plane's bearer token (random, 48 hex characters)
#   postgres_password    TimescaleDB's password for the user tickflow (random)
#   database_url         postgres://tickflow:<postgres_password>@timescaledb:5432/tickflow
#   oanda_api_token      only when OANDA_API_TOKEN is set in this script's environment
#   oanda_account_id     only when OANDA_ACCOUNT_ID is set
#
# Usage: bash deploy/init-secrets.sh [DIR]          (DIR defaults to deploy/secrets)
#        OANDA_API_TOKEN=... OANDA_ACCOUNT_ID=101-004-1234567-001 bash deploy/init-secrets.sh
#
# Idempotent: a file that exists and is not empty is kept, so running it again never changes a
# token or a password. (The password only takes effect when the TimescaleDB volume is first
# initialised; to change it later, ALTER USER in the database and edit both files.) A password of
# your own must be URL-encoded inside database_url.
#
# The directory is private to you (0700); the files in it are 0644 because compose mounts them
# into containers that run as other users (the services as uid 10001, PostgreSQL as its own).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/deploy/secrets}"

mkdir -p "$dir"
chmod 0700 "$dir"

# write NAME VALUE: create $dir/NAME holding VALUE unless it already holds something.
write() {
  local file="$dir/$1"
  if [ -s "$file" ]; then
    printf 'kept    %s\n' "$file"
    return 0
  fi
  (umask 022 && printf '%s\n' "$2" >"$file.tmp")
  chmod 0644 "$file.tmp"
  mv "$file.tmp" "$file"
  printf 'wrote   %s\n' "$file"
}

# random BYTES: that many random bytes as lower-case hex (no character needs URL-encoding).
random() {
  od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

write tickflow_api_token "$(random 24)"
write postgres_password "$(random 24)"
password="$(head -n 1 "$dir/postgres_password")"
write database_url "postgres://tickflow:${password}@timescaledb:5432/tickflow"

if [ -n "${OANDA_API_TOKEN:-}" ]; then
  write oanda_api_token "$OANDA_API_TOKEN"
fi
if [ -n "${OANDA_ACCOUNT_ID:-}" ]; then
  write oanda_account_id "$OANDA_ACCOUNT_ID"
fi
if [ ! -s "$dir/oanda_api_token" ] || [ ! -s "$dir/oanda_account_id" ]; then
  printf 'note    no OANDA credentials in %s: `--profile oanda` needs oanda_api_token and oanda_account_id\n' "$dir"
fi

#!/usr/bin/env bash
# Peak memory under a login flood: the release build on PostgreSQL, flooded
# with logins (wrong passwords, addresses without accounts: every one is
# hashed) by wrk at 8 and then 64 connections. Prints the resident memory
# idle, the peak after each phase and after the flood, and their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

PG="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
DB=session_manager_bench
PORT="${BENCH_PORT:-18080}"
SECONDS_PER_PHASE="${BENCH_SECONDS:-20}"

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null || { echo "install wrk (Debian: apt-get install wrk)"; exit 1; }; }
# BENCH_BIN runs another build (e.g. an older commit's, to compare two
# builds in one sitting); by default the release build of this checkout.
if [ -n "${BENCH_BIN:-}" ]; then
    BIN="$BENCH_BIN"
else
    cargo build --release --quiet
    BIN=target/release/session-manager
fi

psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export DATABASE_URL="$PG/$DB"
"$BIN" seed-demo >/dev/null

# Throttling would answer most of the flood without hashing; this measures
# the hashing, so the thresholds are out of reach.
export SESSION_MANAGER_SERVER__BIND="127.0.0.1:$PORT"
export SESSION_MANAGER_LOGIN_THROTTLE__EMAIL_MAX_FAILURES=100000000
export SESSION_MANAGER_LOGIN_THROTTLE__ADDRESS_MAX_FAILURES=100000000
export SESSION_MANAGER_TELEMETRY__FILTER=warn
"$BIN" serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done

kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$SERVER/status"; }
# One login warms the dummy hash and the pool's threads.
curl -fsS "http://127.0.0.1:$PORT/graphql" -H 'content-type: application/json' \
  -d '{"query":"mutation { login(email: \"warm@example.org\", password: \"warm up please\") { token } }"}' >/dev/null
idle=$(kib VmRSS)

echo "== 8 connections, ${SECONDS_PER_PHASE}s"
wrk -t 2 -c 8 -d "${SECONDS_PER_PHASE}s" -s bench/login-flood.lua "http://127.0.0.1:$PORT" | grep -E "Requests/sec|answers|Latency"
peak8=$(kib VmHWM)
echo "== 64 connections, ${SECONDS_PER_PHASE}s"
wrk -t 2 -c 64 -d "${SECONDS_PER_PHASE}s" -s bench/login-flood.lua "http://127.0.0.1:$PORT" | grep -E "Requests/sec|answers|Latency"
peak64=$(kib VmHWM)
sleep 2
after=$(kib VmRSS)

awk -v idle="$idle" -v p8="$peak8" -v p64="$peak64" -v after="$after" 'BEGIN {
  printf "resident memory (MiB): idle %.1f, peak at 8 connections %.1f, peak at 64 %.1f, after the flood %.1f\n", idle/1024, p8/1024, p64/1024, after/1024
  printf "ratios: peak64/peak8 %.2f, peak64/idle %.2f, after/idle %.2f\n", p64/p8, p64/idle, after/idle
}'

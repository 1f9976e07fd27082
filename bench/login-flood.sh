#!/usr/bin/env bash
# Peak memory under a login flood: the release build on PostgreSQL, flooded
# with logins (wrong passwords, addresses without accounts: every one is
# hashed) by wrk at 8 and then 64 connections. Prints the resident memory
# idle, the peak after each phase and after the flood, and their ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_PHASE="${BENCH_SECONDS:-20}"
. bench/common.sh

bench_require wrk wrk
bench_build
bench_database

# Throttling would answer most of the flood without hashing; this measures
# the hashing, so the thresholds are out of reach.
export SESSION_MANAGER_LOGIN_THROTTLE__EMAIL_MAX_FAILURES=100000000
export SESSION_MANAGER_LOGIN_THROTTLE__ADDRESS_MAX_FAILURES=100000000
bench_start_server

kib() { bench_kib "$1"; }
# One login warms the dummy hash and the pool's threads.
curl -fsS "$URL/graphql" -H 'content-type: application/json' \
  -d '{"query":"mutation { login(email: \"warm@example.org\", password: \"warm up please\") { token } }"}' >/dev/null
idle=$(kib VmRSS)

echo "== 8 connections, ${SECONDS_PER_PHASE}s"
wrk -t 2 -c 8 -d "${SECONDS_PER_PHASE}s" -s bench/login-flood.lua "$URL" | grep -E "Requests/sec|answers|Latency"
peak8=$(kib VmHWM)
echo "== 64 connections, ${SECONDS_PER_PHASE}s"
wrk -t 2 -c 64 -d "${SECONDS_PER_PHASE}s" -s bench/login-flood.lua "$URL" | grep -E "Requests/sec|answers|Latency"
peak64=$(kib VmHWM)
sleep 2
after=$(kib VmRSS)

awk -v idle="$idle" -v p8="$peak8" -v p64="$peak64" -v after="$after" 'BEGIN {
  printf "resident memory (MiB): idle %.1f, peak at 8 connections %.1f, peak at 64 %.1f, after the flood %.1f\n", idle/1024, p8/1024, p64/1024, after/1024
  printf "ratios: peak64/peak8 %.2f, peak64/idle %.2f, after/idle %.2f\n", p64/p8, p64/idle, after/idle
}'

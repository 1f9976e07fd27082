#!/usr/bin/env bash
# What authentication costs a request: the release build on PostgreSQL,
# anonymous `{ __typename }` and authenticated `{ me { user { id } } }`, each
# at 32 connections for 15 s with wrk, in one run, alternating (anonymous,
# authenticated, anonymous, authenticated). Prints each rate and the ratio
# of the authenticated rate to the anonymous one.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_PHASE="${BENCH_SECONDS:-15}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
. bench/common.sh

bench_require wrk wrk
bench_build
bench_database
bench_start_server
TOKEN=$(bench_login admin@demo.example demo-admin-pass)

OUT=$(mktemp)
# Runs one phase (NAME QUERY TOKEN), shows wrk's summary, sets RATE.
phase() {
  echo "== $1: $2, $CONNECTIONS connections, ${SECONDS_PER_PHASE}s"
  BENCH_QUERY="$2" BENCH_TOKEN="$3" wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_PER_PHASE}s" \
    -s bench/graphql-rate.lua "$URL" >"$OUT"
  grep -E "Latency|Requests/sec|answers|Non-2xx" "$OUT"
  RATE=$(awk '/Requests\/sec/ { print $2 }' "$OUT")
}

ANON='{ __typename }'
AUTH='{ me { user { id } } }'
# A short warm-up: connections, the identity cache, the settings cache.
BENCH_QUERY="$AUTH" BENCH_TOKEN="$TOKEN" wrk -t 1 -c 4 -d 2s -s bench/graphql-rate.lua "$URL" >/dev/null

phase anonymous "$ANON" ""; anon1=$RATE
phase authenticated "$AUTH" "$TOKEN"; auth1=$RATE
phase anonymous "$ANON" ""; anon2=$RATE
phase authenticated "$AUTH" "$TOKEN"; auth2=$RATE
rm -f "$OUT"

awk -v a1="$anon1" -v a2="$anon2" -v u1="$auth1" -v u2="$auth2" 'BEGIN {
  anon = (a1 + a2) / 2; auth = (u1 + u2) / 2
  printf "anonymous %.0f req/s (%.0f, %.0f); authenticated %.0f req/s (%.0f, %.0f)\n", anon, a1, a2, auth, u1, u2
  printf "ratio authenticated/anonymous: %.2f (target >= 0.50)\n", auth / anon
}'

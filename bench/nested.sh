#!/usr/bin/env bash
# The admin portal's main screen: the first 50 sessions by creation time with
# their modules and videos (bench/nested.graphql: 3,050 objects), over data
# of 1,000 sessions x 10 modules x 5 videos (bench/nested_seed.py), at
# BENCH_CONNECTIONS (16) for BENCH_SECONDS (20) per phase after a warm-up.
#
# PostgreSQL: uncompressed, gzip and zstd, then the physical reference:
# pgbench running bench/nested.sql, one statement that builds the same JSON
# document inside PostgreSQL. SQLite (the embedded default): uncompressed,
# then again while a writer renames a session as fast as it can.
#
# Each phase prints req/s, p50/p99, the server's CPU per request (user +
# system time from /proc/PID/stat over the phase, divided by its requests)
# and its resident memory at the end of the phase (and the peak).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_PHASE="${BENCH_SECONDS:-20}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
. bench/common.sh

bench_require wrk wrk
bench_require pgbench postgresql-contrib
bench_build
TICK=$(getconf CLK_TCK)
BODY=$(python3 -c 'import json, sys; print(json.dumps({"query": open("bench/nested.graphql").read()}))')
export BENCH_BODY="$BODY"
OUT=$(mktemp)
SQLITE_DIR=$(mktemp -d)

ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER/stat"; }

# Checks one answer (ENCODING): no errors, 50 sessions; prints its size.
check() {
  # --compressed decodes (and asks for every encoding): ask for ENCODING alone.
  curl -fsS ${1:+--compressed -H "accept-encoding: $1"} "$URL/graphql" -H 'content-type: application/json' \
    -H "authorization: Bearer $TOKEN" -d "$BODY" -o "$OUT.json" \
    -w "%{size_download} %header{content-encoding}" >"$OUT.size"
  python3 - "$OUT.json" "$(cat "$OUT.size")" "${1:-identity}" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert "errors" not in doc, doc.get("errors")
nodes = doc["data"]["sessions"]["nodes"]
objects = len(nodes) + sum(len(s["modules"]) + sum(len(m["videos"]) for m in s["modules"]) for s in nodes)
assert len(nodes) == 50, len(nodes)
size = len(json.dumps(doc, separators=(",", ":")).encode())
wire, _, encoding = sys.argv[2].partition(" ")
print(f"answer ok (asked {sys.argv[3]}, got {encoding or 'identity'}): {objects} objects, {size} bytes of JSON, {wire} bytes on the wire")
PY
}

# Runs one wrk phase (NAME ENCODING), prints its figures, sets RATE and CPU.
phase() {
  local before after
  before=$(ticks)
  BENCH_TOKEN="$TOKEN" BENCH_ENCODING="$2" wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_PER_PHASE}s" \
    --latency -s bench/nested.lua "$URL" >"$OUT"
  after=$(ticks)
  RATE=$(awk '/Requests\/sec/ { print $2 }' "$OUT")
  local requests p50 p99 errors
  requests=$(awk '/requests in/ { print $1 }' "$OUT")
  p50=$(awk '$1 == "50%" { print $2 }' "$OUT")
  p99=$(awk '$1 == "99%" { print $2 }' "$OUT")
  errors=$(grep -E "Non-2xx|Socket errors" "$OUT" | tr '\n' ' ' || true)
  CPU=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$requests" 'BEGIN { printf "%.2f", t * 1000 / hz / n }')
  printf "== %-22s %8.1f req/s  p50 %8s  p99 %8s  server CPU %6s ms/request  RSS %s MiB (peak %s) %s\n" \
    "$1" "$RATE" "$p50" "$p99" "$CPU" "$(($(bench_kib) / 1024))" "$(($(bench_kib VmHWM) / 1024))" "$errors"
}

# Starts the server on DATABASE_URL with its token and warms it up.
serve() {
  bench_start_server
  TOKEN=$(bench_login admin@demo.example demo-admin-pass)
  BENCH_TOKEN="$TOKEN" wrk -t 2 -c "$CONNECTIONS" -d 5s -s bench/nested.lua "$URL" >/dev/null
}

echo "== PostgreSQL"
bench_database
python3 bench/nested_seed.py postgres "$DATABASE_URL"
serve
check ""; check gzip; check zstd
phase "graphql" ""; PG_RATE=$RATE; PG_CPU=$CPU
phase "graphql, gzip" "gzip"; GZIP_RATE=$RATE
phase "graphql, zstd" "zstd"; ZSTD_RATE=$RATE
phase "graphql (again)" ""; PG_RATE2=$RATE
check ""
pgbench -n -c "$CONNECTIONS" -j 2 -T "$SECONDS_PER_PHASE" -f bench/nested.sql "$DATABASE_URL" >"$OUT" 2>&1
SQL_TPS=$(awk '/^tps/ { print $3; exit }' "$OUT")
printf "== %-22s %8.1f tps\n" "sql (pgbench)" "$SQL_TPS"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true

echo "== SQLite (embedded)"
export DATABASE_URL="sqlite://$SQLITE_DIR/bench.db?mode=rwc"
"$BIN" seed-demo >/dev/null
python3 bench/nested_seed.py sqlite "$SQLITE_DIR/bench.db"
serve
check ""
phase "graphql on sqlite" ""; LITE_RATE=$RATE
# A writer renaming a demo session as fast as it can, beside the readers.
DEMO=$(curl -fsS "$URL/graphql" -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \
  -d '{"query":"{ sessions(filter: { status: ACTIVE }, first: 1) { nodes { id } } }"}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["sessions"]["nodes"][0]["id"])')
WRITE=$(python3 -c 'import json, sys; print(json.dumps({"query": "mutation($id: UUID!) { updateSession(id: $id, input: { name: \"Renamed by the benchmark\" }) { id } }", "variables": {"id": sys.argv[1]}}))' "$DEMO")
BENCH_TOKEN="$TOKEN" BENCH_BODY="$WRITE" wrk -t 1 -c 1 -d "${SECONDS_PER_PHASE}s" -s bench/nested.lua "$URL" >"$OUT.writes" &
WRITER=$!
phase "sqlite, while writing" ""; LITE_WRITING=$RATE
wait "$WRITER"
printf "== %-22s %8.1f writes/s  %s\n" "the writer" "$(awk '/Requests\/sec/ { print $2 }' "$OUT.writes")" \
  "$(grep -E "Non-2xx|Socket errors" "$OUT.writes" | tr '\n' ' ' || true)"
check ""
rm -rf "$OUT" "$OUT".* "$SQLITE_DIR"

awk -v pg="$PG_RATE" -v pg2="$PG_RATE2" -v sql="$SQL_TPS" -v cpu="$PG_CPU" -v gz="$GZIP_RATE" -v zs="$ZSTD_RATE" \
    -v lite="$LITE_RATE" -v busy="$LITE_WRITING" 'BEGIN {
  mean = (pg + pg2) / 2
  printf "graphql/sql: %.2f (target >= 0.6, stretch >= 1.0); server CPU %.2f ms per request (target <= 6)\n", mean / sql, cpu
  printf "gzip/uncompressed: %.2f; zstd/uncompressed: %.2f\n", gz / mean, zs / mean
  printf "sqlite/postgresql: %.2f (target >= 0.5); sqlite while writing/sqlite: %.2f\n", lite / mean, busy / lite
}'

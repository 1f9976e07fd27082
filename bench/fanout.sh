#!/usr/bin/env bash
# Fan-out: N graphql-transport-ws subscribers to `sessionStatusChanged` of
# one session (N grows in steps, 1,000, 5,000, 10,000 by default), one
# `updateSession` per round, the time from sending the mutation to each
# delivery (p50, p99, max, and the last), and the server's resident memory
# per subscriber. The release build on PostgreSQL; the client is
# `bench/fanout` (oha and wrk do not speak graphql-transport-ws).
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS="${BENCH_STEPS:-1000,5000,10000}"
ROUNDS="${BENCH_ROUNDS:-5}"
. bench/common.sh

# Each subscriber is a socket in the server and one in the client.
ulimit -n "$(ulimit -Hn)"
most=$(tr ',' '\n' <<<"$STEPS" | sort -n | tail -1)
if [ "$(ulimit -n)" -lt $((most + 1000)) ]; then
  echo "the open-files limit ($(ulimit -n)) is too low for $most subscribers"; exit 1
fi

bench_build -p fanout
bench_database

# One guardian per subscriber, each with an open login session, linked to
# the supervised user of the demo session "Study mode". Inserted directly:
# logging in 10,000 times would measure password hashing and the login
# limits instead. The client signs their tokens with the server's secret.
SECRET="fanout-bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SESSION_MANAGER_AUTH__TOKEN_SECRET="$SECRET"
SUBJECTS=$(mktemp)
psql -q -v ON_ERROR_STOP=1 -v n="$most" "$DATABASE_URL" <<SQL
CREATE TEMP TABLE fans AS
  SELECT g, gen_random_uuid() AS user_id, gen_random_uuid() AS login_id FROM generate_series(1, :n) g;
CREATE TEMP TABLE watched AS SELECT id, tenant_id, user_id FROM sessions WHERE name = 'Study mode';
INSERT INTO users (id, email, name, password_hash, is_super_admin, created_at, updated_at)
  SELECT user_id, 'fan' || g || '@bench.example', 'Fan ' || g, '!', false, now(), now() FROM fans;
INSERT INTO tenant_memberships (id, user_id, tenant_id, role, is_default, created_at, updated_at)
  SELECT gen_random_uuid(), f.user_id, w.tenant_id, 'guardian', true, now(), now() FROM fans f, watched w;
INSERT INTO guardian_links (id, tenant_id, guardian_id, user_id, created_at, updated_at)
  SELECT gen_random_uuid(), w.tenant_id, f.user_id, w.user_id, now(), now() FROM fans f, watched w;
INSERT INTO session_logs (id, user_id, tenant_id, login_at, last_seen_at, device_info, created_at, updated_at)
  SELECT f.login_id, f.user_id, w.tenant_id, now(), now(), 'fan-out benchmark', now(), now() FROM fans f, watched w;
\copy (SELECT user_id || ' ' || login_id FROM fans ORDER BY g) TO '$SUBJECTS'
SQL
SESSION=$(psql -qtA "$DATABASE_URL" -c "SELECT id FROM sessions WHERE name = 'Study mode'")

bench_start_server
export FANOUT_TOKEN_SECRET="$SECRET"
FANOUT_ADMIN_TOKEN=$(bench_login admin@demo.example demo-admin-pass)
export FANOUT_ADMIN_TOKEN
FANOUT="${BENCH_FANOUT_BIN:-target/release/fanout}"
"$FANOUT" --ws "ws://127.0.0.1:$PORT/graphql/ws" --http "$URL/graphql" --subjects "$SUBJECTS" \
  --session "$SESSION" --server-pid "$SERVER" --steps "$STEPS" --rounds "$ROUNDS"
rm -f "$SUBJECTS"

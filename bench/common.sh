# Shared by the benchmark scripts (sourced): the release build, a fresh
# PostgreSQL database with the demo data, the server, logins.
#
# BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432), BENCH_PORT
# (default 18080), BENCH_BIN (another build, e.g. an older commit's, to
# compare two builds in one sitting; by default this checkout's release
# build).

PG="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
DB=session_manager_bench
PORT="${BENCH_PORT:-18080}"
URL="http://127.0.0.1:$PORT"

# Installs a Debian package when its command is missing.
bench_require() {
  command -v "$1" >/dev/null || apt-get install -y "$2" >/dev/null \
    || { echo "install $1 (Debian: apt-get install $2)"; exit 1; }
}

# Sets BIN; builds the release binaries unless BENCH_BIN names one.
bench_build() {
  if [ -n "${BENCH_BIN:-}" ]; then
    BIN="$BENCH_BIN"
  else
    cargo build --release --quiet -p session-manager "$@"
    BIN=target/release/session-manager
  fi
}

# Recreates the benchmark database with the demo data; exports DATABASE_URL.
bench_database() {
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  export DATABASE_URL="$PG/$DB"
  "$BIN" seed-demo >/dev/null
}

# Starts the server in the background (SERVER is its pid) and waits until
# it is ready; it is stopped when the script exits.
bench_start_server() {
  export SESSION_MANAGER_SERVER__BIND="127.0.0.1:$PORT"
  export SESSION_MANAGER_TELEMETRY__FILTER="${SESSION_MANAGER_TELEMETRY__FILTER:-warn}"
  "$BIN" serve &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -fsS "$URL/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the server did not become ready"; exit 1
}

# Prints a token for the demo login EMAIL with PASSWORD.
bench_login() {
  curl -fsS "$URL/graphql" -H 'content-type: application/json' \
    -d "{\"query\":\"mutation { login(email: \\\"$1\\\", password: \\\"$2\\\") { token } }\"}" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["login"]["token"])'
}

# The server's resident memory (or another /proc status KEY) in KiB.
bench_kib() {
  awk -v key="${1:-VmRSS}:" '$1 == key { print $2 }' "/proc/$SERVER/status"
}

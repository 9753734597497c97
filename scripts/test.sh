#!/usr/bin/env bash
# The whole suite: installs what is missing, starts a throw-away Temporal dev server (in memory,
# with our search attributes), builds the binaries, runs every test, stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
PORT=${PCN_TEST_TEMPORAL_PORT:-17233}
LOG=.pcn/test-devserver.log
./.pcn/bin/temporal server start-dev --headless --ip 127.0.0.1 --port "$PORT" \
  --http-port $((PORT + 10)) --metrics-port $((PORT + 11)) \
  --search-attribute PcnMonth=Keyword --search-attribute PcnPhase=Keyword --search-attribute PcnCustomer=Keyword --search-attribute PcnNotificationStatus=Keyword \
  --log-level error >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 1
done
export PCN_TEST_TEMPORAL_ADDRESS=127.0.0.1:$PORT
export PCN_TEST_SERVER_BIN=$PWD/.pcn/bin/temporal-test-server
# Databases left by earlier runs (each test creates its own).
psql -h 127.0.0.1 -U postgres -d postgres -Atc \
  "SELECT 'DROP DATABASE ' || datname || ';' FROM pg_database WHERE datname LIKE 'pcn_test_%'" \
  | psql -h 127.0.0.1 -U postgres -d postgres -q >/dev/null 2>&1 || true
cargo build --workspace --bins
cargo test --workspace -- --test-threads 4

#!/usr/bin/env bash
# The whole suite: installs what is missing, tests the alert rules (promtool), starts a throw-away
# Temporal dev server (in memory, with our search attributes), builds the binaries, runs every
# test, stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
# The alert rules' unit tests and the monitoring files (seconds; fails the suite on a failure).
bash scripts/rules.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
PORT=${PCN_TEST_TEMPORAL_PORT:-17233}
LOG=.pcn/test-devserver.log
./.pcn/bin/temporal server start-dev --headless --ip 127.0.0.1 --port "$PORT" \
  --http-port $((PORT + 10)) --metrics-port $((PORT + 11)) \
  $(search_attribute_flags) \
  --log-level error >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
# A loaded 2-core machine can take a while: wait up to PCN_TEST_SERVER_STARTUP_SECS (180 s).
WAIT=${PCN_TEST_SERVER_STARTUP_SECS:-180}
for i in $(seq 1 "$WAIT"); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  if [ "$i" -eq "$WAIT" ] || ! kill -0 $SERVER 2>/dev/null; then
    echo "the Temporal dev server did not listen on 127.0.0.1:$PORT within ${WAIT}s; see $LOG" >&2
    exit 1
  fi
  sleep 1
done
export PCN_TEST_TEMPORAL_ADDRESS=127.0.0.1:$PORT
export PCN_TEST_SERVER_BIN=$PWD/.pcn/bin/temporal-test-server
export PCN_TEST_TEMPORAL_BIN=$PWD/.pcn/bin/temporal
# Databases left by earlier runs (each test creates its own).
psql -h 127.0.0.1 -U postgres -d postgres -Atc \
  "SELECT 'DROP DATABASE ' || datname || ';' FROM pg_database WHERE datname LIKE 'pcn_test_%'" \
  | psql -h 127.0.0.1 -U postgres -d postgres -q >/dev/null 2>&1 || true
cargo build --workspace --bins
cargo test --workspace -- --test-threads 4

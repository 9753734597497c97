#!/usr/bin/env bash
# `make demo`: the embedded default on this machine, end to end.
#   Temporal dev server + Web UI (http://localhost:8233), Postgres, the bank and carrier
#   simulators, the carrier webhook, the worker, the control API; then PCN_DEMO_CUSTOMERS simulated
#   customers are imported and a whole past month is backfilled for them through the control API
#   (pcnctl customer import, month start/watch), every qualified customer gets one SMS through the
#   carrier simulator (followed to its final state), and the qualification and delivery summary
#   is printed, then the monthly report through the control API (pcnctl) with its HTML/XLSX/CSV
#   exports in .pcn/demo/. Services stay up; `bash scripts/demo.sh stop` stops them.
# Settings: PCN_DEMO_CUSTOMERS (default 1000), PCN_DEMO_MONTH (default: last month, YYYY-MM).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
STATE=.pcn/demo
mkdir -p "$STATE"

stop() {
  for f in "$STATE"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}
if [ "${1:-}" = "stop" ]; then stop; echo "demo stopped"; exit 0; fi

bash scripts/tools.sh
echo "building..."
cargo build --release --bins -q
BIN=${CARGO_TARGET_DIR:-target}/release
CUSTOMERS=${PCN_DEMO_CUSTOMERS:-1000}
MONTH=${PCN_DEMO_MONTH:-$(TZ=Asia/Jerusalem date -d "$(TZ=Asia/Jerusalem date +%Y-%m-01) -1 day" +%Y-%m)}
# The processes connect as the application role, which owns nothing and may not change the audit
# trail; `pcn-worker setup` alone uses the superuser (it creates the roles, migrates as the owner
# role and grants).
# The simulators accept the development secrets: say so explicitly (production refuses them).
export PCN_PROFILE=development
export PCN_DATABASE_URL=${PCN_DATABASE_URL:-postgres://pcn_app@127.0.0.1:5432/pcn}
SETUP_URL=${PCN_DATABASE_SETUP_URL:-postgres://postgres@127.0.0.1:5432/pcn}
export PCN_TEMPORAL_ADDRESS=${PCN_TEMPORAL_ADDRESS:-127.0.0.1:7233}
export PCN_BANK_URL=http://127.0.0.1:8081
export PCN_CARRIER_URL=http://127.0.0.1:8082
export PCN_WEBHOOK_PUBLIC_URL=http://127.0.0.1:8090
# The demo runs at any hour: the send window is opened for it (production default:
# Sunday–Thursday 09:00–20:00 Asia/Jerusalem), and the month re-reads its counts every 2 s.
export PCN_SMS_WINDOW=${PCN_SMS_WINDOW:-always}
export PCN_NOTIFICATION_POLL_SECS=${PCN_NOTIFICATION_POLL_SECS:-2}
# Retry delay, confirmation window and poll interval shortened (defaults 6 h, 72 h, 2 h) so the
# simulated failures play out in a minute, not three days.
export PCN_SMS_RETRY_DELAY_SECS=${PCN_SMS_RETRY_DELAY_SECS:-15}
export PCN_SMS_CONFIRMATION_TIMEOUT_SECS=${PCN_SMS_CONFIRMATION_TIMEOUT_SECS:-120}
export PCN_SMS_POLL_INTERVAL_SECS=${PCN_SMS_POLL_INTERVAL_SECS:-30}

up() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
start() { # name port command...
  local name=$1 port=$2; shift 2
  if up "$port"; then echo "$name already listening on :$port"; return 0; fi
  "$@" >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
  for _ in $(seq 1 60); do up "$port" && return 0; sleep 1; done
  echo "$name did not start; see $STATE/$name.log" >&2; exit 1
}

# Payloads are encrypted (PCN_PAYLOAD_KEYS: the development keyring in this profile); the Web UI
# decodes them through the codec server the control API serves on :8089.
start temporal 7233 ./.pcn/bin/temporal server start-dev --ip 127.0.0.1 --ui-port 8233 \
  --ui-codec-endpoint http://127.0.0.1:8089 \
  --db-filename "$STATE/temporal.db" \
  --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
  $(search_attribute_flags) --log-level error
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'pcn'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE pcn"
PCN_DATABASE_SETUP_URL=$SETUP_URL "$BIN/pcn-worker" setup
start bank 8081 "$BIN/pcn-bank-sim" --accounts "$CUSTOMERS" --seed 42
"$BIN/pcn-bank-sim" --accounts "$CUSTOMERS" --customers-csv "$STATE/customers.csv" >/dev/null
start carrier 8082 "$BIN/pcn-carrier-sim" --bind 127.0.0.1:8082 --seed 42 \
  --failed-ppm 20000 --undeliverable-ppm 5000 --duplicate-ppm 50000 --callback-delay-ms 300 \
  --inbound-generic-url http://127.0.0.1:8090/webhooks/sms-inbound
# A second carrier simulator speaking the Twilio API: the secondary the worker fails over to while
# the primary's circuit breaker is open (`curl -X POST '127.0.0.1:8082/admin/outage?seconds=60'` to see it).
start carrier-secondary 8083 "$BIN/pcn-carrier-sim" --bind 127.0.0.1:8083 --seed 43 \
  --callback-delay-ms 300 --inbound-twilio-url http://127.0.0.1:8090/webhooks/twilio/inbound
export PCN_CARRIER_SECONDARY=${PCN_CARRIER_SECONDARY:-twilio}
export PCN_CARRIER_SECONDARY_URL=${PCN_CARRIER_SECONDARY_URL:-http://127.0.0.1:8083}
# The simulator's fixed account SID (its auth token is the worker's development default).
export PCN_TWILIO_ACCOUNT_SID=${PCN_TWILIO_ACCOUNT_SID:-AC5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e}
start webhook 8090 "$BIN/pcn-worker" webhook
start worker 9464 "$BIN/pcn-worker" run
# The control API with one demo token per role (only the hashes are given to the server).
for role in viewer operator admin; do
  [ -s "$STATE/$role.token" ] || echo "pcn_demo_${role}_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$STATE/$role.token"
done
PCN_API_TOKENS=$(for role in viewer operator admin; do
  printf '%s:%s:%s,' "demo-$role" "$role" "$("$BIN/pcn-worker" hash-token <"$STATE/$role.token" | sed 's/^sha256: //')"
done)
export PCN_API_TOKENS
# The codec server beside the API: the Web UI's origin may call it, and (development only) it
# decodes without a token, since the dev server's UI has no login to take one from.
export PCN_CODEC_LISTEN=127.0.0.1:8089
export PCN_CODEC_CORS_ORIGIN=http://localhost:8233,http://127.0.0.1:8233
export PCN_CODEC_ANONYMOUS_DECODE=${PCN_CODEC_ANONYMOUS_DECODE:-true}
start api 50051 "$BIN/pcn-worker" api
export PCN_API_ADDRESS=http://127.0.0.1:50051
export PCN_API_TOKEN
echo "importing $CUSTOMERS customers (through the control API)..."
PCN_API_TOKEN=$(cat "$STATE/admin.token")
"$BIN/pcnctl" --timeout 600 customer import "$STATE/customers.csv"   # one call for the whole file
"$BIN/pcn-worker" schedule
echo "backfilling $MONTH for $CUSTOMERS customers (through the control API)..."
PCN_API_TOKEN=$(cat "$STATE/operator.token")
"$BIN/pcnctl" month start "$MONTH" || [ $? -eq 6 ]   # 6: the month already has a run
"$BIN/pcnctl" month watch "$MONTH"
PCN_API_TOKEN=$(cat "$STATE/viewer.token")
"$BIN/pcnctl" report show "$MONTH"
for format in html xlsx csv; do
  "$BIN/pcnctl" report export "$MONTH" --format "$format" --output "$STATE/pcn-report-$MONTH.$format"
done
cat <<MSG

Monthly report for $MONTH above; files: $STATE/pcn-report-$MONTH.{html,xlsx,csv}
Control API: $PCN_API_ADDRESS (gRPC, reflection on), tokens in $STATE/{viewer,operator,admin}.token
  e.g. PCN_API_TOKEN=\$(cat $STATE/viewer.token) $BIN/pcnctl notifications list $MONTH --status UNDELIVERABLE
Temporal Web UI: http://localhost:8233/namespaces/default/workflows?query=PcnMonth%3D%22$MONTH%22
  e.g. every message that did not arrive: PcnMonth="$MONTH" AND PcnNotificationStatus="UNDELIVERABLE"
  Payloads are encrypted in Temporal; the UI decodes them through http://127.0.0.1:8089 (the codec
  server of the control API; outside the demo it needs a viewer token: see README, "Reading payloads").
Carrier simulators: http://127.0.0.1:8082/admin/stats (primary, generic API),
  http://127.0.0.1:8083/admin/stats (secondary, Twilio API)   Webhook: http://127.0.0.1:8090/healthz
Worker metrics:  http://127.0.0.1:9464/metrics   Postgres: $PCN_DATABASE_URL
Stop everything: bash scripts/demo.sh stop
MSG

#!/usr/bin/env bash
# `make chaos`: one whole month of simulated customers through the real processes while they are
# broken on purpose, then a table of checks computed independently (SQL on the chaos Postgres and
# the carrier simulator's admin API). Exit 0 only when every check is OK.
#
# What it does (everything on loopback, on its own ports, with its own state in .pcn/chaos/):
#   - builds the binaries (`cargo build --bins`, debug, into $CARGO_TARGET_DIR or target/) and
#     copies them to .pcn/chaos/bin, so a concurrent build cannot swap a binary under the run;
#   - starts its OWN Postgres cluster (initdb into .pcn/chaos/pg, 127.0.0.1:55432, trust, socket in
#     .pcn/chaos; run as the `postgres` user when the script runs as root), a FILE-BACKED Temporal
#     dev server (.pcn/chaos/temporal.db, WAL, 127.0.0.1:27933, headless), the bank simulator
#     (503s and latency), the carrier simulator (no deduplication of repeated references, answers
#     held 300 ms, rate limited so the SMS phase lasts), the control API (`pcn-worker api`, one
#     fresh token per role), the carrier webhook and the worker;
#   - acts as an operator does, through the control API with `pcnctl`: imports PCN_CHAOS_CUSTOMERS
#     customers (`customer import`), backfills PCN_CHAOS_MONTH at once (`month start`) and reads
#     its phase (`--json month get`); then injects, in order, each logged with a timestamp:
#       1. kill -9 of the worker during the daily sweeps (mid-day when it can), restart;
#       2. kill -9 of the Temporal server during the month, restart on the same db file (the
#          worker is restarted too only if it does not resume by itself: logged);
#       3. Postgres `pg_ctl restart -m fast` during the sweeps, later `-m immediate`;
#       4. once SMS go out: Temporal down for PCN_CHAOS_TEMPORAL_DOWN_SECS while callbacks arrive
#          (the webhook keeps them PENDING, its reconciler signals them later), restart;
#       5. kill -9 of the worker while an SMS submission is in flight (an sms_attempts row in
#          SUBMITTING), restart;
#   - waits (bounded) for the month to be COMPLETED and for no delivery event to stay PENDING,
#     then prints the checks (scripts/chaos_checks.sql): balance checks exactly once per
#     customer-day, qualified = independent recount (same set both ways), exactly one accepted
#     message per qualified phone and no repeated reference at the carrier, every notification
#     final, no PENDING delivery event, phase COMPLETED, no process that died on its own; and, for
#     information, in-doubt resolutions by kind and other counts.
#   - stops every process it started on any exit (success, failure, Ctrl-C, timeout); the logs
#     stay in .pcn/chaos/*.log (their paths are printed on failure).
#
# Settings (environment):
#   PCN_CHAOS_MONTH=2025-07          the month (a past month: backfilled at once)
#   PCN_CHAOS_CUSTOMERS=300          simulated customers
#   PCN_CHAOS_SEED=42                seed of both simulators
#   PCN_CHAOS_BUDGET_SECS=1500       hard limit of the whole run, build included (25 min)
#   PCN_CHAOS_SKIP_BUILD=1           use the binaries already in $CARGO_TARGET_DIR/debug
#                                    (target/debug when CARGO_TARGET_DIR is not set)
#   PCN_CHAOS_BANK_LATENCY_MS=20     bank simulator latency (slows the sweeps so faults land in them)
#   PCN_CHAOS_BANK_503_PPM=20000     bank simulator 503 rate
#   PCN_CHAOS_CARRIER_RATE=10        carrier submissions per second before 429 (stretches the SMS
#                                    phase so faults 4 and 5 land in it; 0: no limit)
#   PCN_CHAOS_SMS_BATCH=10           most messages per carrier request (PCN_SMS_BATCH_MAX): with
#                                    the rate above, batches of 10 go out about one a second; one
#                                    batch of the whole fan-out would pass the rate at once and end
#                                    the SMS phase before faults 4 and 5
#   PCN_CHAOS_TEMPORAL_DOWN_SECS=10  length of fault 4
#   PCN_CHAOS_PORT_BASE=27900        ports: Temporal +33 (http +43, metrics +44), bank +81,
#                                    carrier +82, webhook +90, control API +51, worker health +64,
#                                    SDK metrics +65;
#                                    Postgres on PCN_CHAOS_PG_PORT=55432
# How long: about 3 minutes on a 2-core machine once the binaries are built (sweeps with
# faults 1-3 about 1.5 min, the SMS phase with faults 4-5 under 1 min); never more than the budget.
# Exit status: 0 every check OK; 1 a check failed or a wait ran out (it says what it waited for);
# 124 the hard limit was reached; 130/143 interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
DIR=$ROOT/.pcn/chaos

MONTH=${PCN_CHAOS_MONTH:-2025-07}
CUSTOMERS=${PCN_CHAOS_CUSTOMERS:-300}
SEED=${PCN_CHAOS_SEED:-42}
BUDGET=${PCN_CHAOS_BUDGET_SECS:-1500}
BANK_LATENCY=${PCN_CHAOS_BANK_LATENCY_MS:-20}
BANK_503=${PCN_CHAOS_BANK_503_PPM:-20000}
CARRIER_RATE=${PCN_CHAOS_CARRIER_RATE:-10}
TEMPORAL_DOWN=${PCN_CHAOS_TEMPORAL_DOWN_SECS:-10}
BASE=${PCN_CHAOS_PORT_BASE:-27900}
PG_PORT=${PCN_CHAOS_PG_PORT:-55432}
T_PORT=$((BASE + 33))
BANK_PORT=$((BASE + 81))
CARRIER_PORT=$((BASE + 82))
WEBHOOK_PORT=$((BASE + 90))
API_PORT=$((BASE + 51))
HEALTH_PORT=$((BASE + 64))

[[ $MONTH =~ ^[0-9]{4}-(0[1-9]|1[0-2])$ ]] || { echo "PCN_CHAOS_MONTH must be YYYY-MM" >&2; exit 2; }
MONTH_FIRST=$MONTH-01
DAYS=$(date -d "$MONTH_FIRST +1 month -1 day" +%d | sed 's/^0//')

START=$(date +%s)
DEADLINE=$((START + BUDGET))
FAULTS=()          # "time  description" of every injected fault
PHASES=()          # "name|seconds"
PHASE_NAME=""
PHASE_START=$START
UNEXPECTED=0       # processes that exited without the script killing them
declare -A PID=()  # name -> pid of the processes this script started
declare -A CMD=()  # name -> command line (for restarts)
STATUS=1
WATCHDOG=""

ts() { date +%H:%M:%S; }
elapsed() { echo $(($(date +%s) - START)); }
log() { printf '[%s +%4ss] %s\n' "$(ts)" "$(elapsed)" "$*" | tee -a "$DIR/chaos.log"; }
die() { log "FAILED: $*"; exit 1; }
remaining() { echo $((DEADLINE - $(date +%s))); }
fault() { FAULTS+=("$(ts) +$(elapsed)s  $*"); log "FAULT: $*"; }

phase() { # ends the current phase (if any) and starts the next one
  local now; now=$(date +%s)
  if [ -n "$PHASE_NAME" ]; then
    PHASES+=("$PHASE_NAME|$((now - PHASE_START))")
    log "phase done in $((now - PHASE_START))s: $PHASE_NAME"
  fi
  PHASE_NAME=${1:-}
  PHASE_START=$now
  [ -z "$PHASE_NAME" ] || log "=== $PHASE_NAME"
}

# Processes ------------------------------------------------------------------------------------

as_pg() { # initdb and pg_ctl refuse root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
pg_ctl_() { as_pg "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/postgres.log" "$@"; }

alive() { # running (a zombie is not)
  local s
  s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $s != Z* ]]
}

spawn() { # name command...  (background, output appended to $DIR/name.log)
  local name=$1; shift
  CMD[$name]="$*"
  echo "----- $(date -Is) start: $*" >>"$DIR/$name.log"
  "$@" >>"$DIR/$name.log" 2>&1 &
  PID[$name]=$!
  echo "${PID[$name]} $name" >>"$DIR/pids"
}

stop_proc() { # name [signal]: stops it and reaps it
  local name=$1 sig=${2:-TERM} pid=${PID[$1]:-}
  [ -n "$pid" ] || return 0
  unset "PID[$name]"
  { # (stderr off: no "Killed" job notice from bash)
    kill -"$sig" "$pid" || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid"; fi
    wait "$pid" || true
  } 2>/dev/null
}

port_up() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

poll_until() { # timeout-seconds command...: polls every second; 1 when the time (or budget) is up
  local limit=$1; shift
  local until=$(($(date +%s) + limit))
  [ "$until" -le "$DEADLINE" ] || until=$DEADLINE
  while :; do
    "$@" && return 0
    [ "$(date +%s)" -lt "$until" ] || return 1
    watch_processes
    sleep 1
  done
}

wait_for() { # description timeout-seconds command...: poll_until, or the run fails saying what for
  local what=$1 limit=$2; shift 2
  poll_until "$limit" "$@" || die "timed out after ${limit}s (or the run's budget) waiting for: $what"
}

wait_port() { wait_for "$1 listening on 127.0.0.1:$2" "${3:-120}" port_up "$2"; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  STATUS=$rc
  [ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null
  log "stopping everything this run started"
  for name in worker webhook api carrier bank temporal; do stop_proc "$name"; done
  if [ -f "$DIR/pg/postmaster.pid" ]; then
    pg_ctl_ stop -m fast -w -t 60 >/dev/null 2>&1 || pg_ctl_ stop -m immediate >/dev/null 2>&1
  fi
  if [ "$STATUS" != 0 ]; then
    echo
    echo "chaos run FAILED (exit $STATUS) after $(elapsed)s; logs:"
    ls -1 "$DIR"/*.log 2>/dev/null | sed 's/^/  /'
  fi
  exit "$STATUS"
}

on_signal() {
  if [ "$1" = TERM ] && [ "$(date +%s)" -ge "$DEADLINE" ]; then
    log "TIMEOUT: the hard limit of ${BUDGET}s (PCN_CHAOS_BUDGET_SECS) is reached during: ${PHASE_NAME:-?}"
    exit 124
  fi
  log "interrupted ($1) during: ${PHASE_NAME:-?}"
  exit "$2"
}

# The run --------------------------------------------------------------------------------------

# Leftovers of an earlier chaos run that was itself killed: only our own processes (by the pids it
# recorded and their command lines) and our own Postgres cluster.
if [ -f "$DIR/pids" ]; then
  while read -r pid name; do
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE 'chaos|pcn-|temporal'; then
      echo "stopping $name ($pid) left by an earlier chaos run"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done <"$DIR/pids"
fi
if [ -n "$PGBIN" ] && [ -f "$DIR/pg/postmaster.pid" ]; then
  pg_ctl_ stop -m immediate >/dev/null 2>&1 || true
fi
rm -rf "$DIR"
mkdir -p "$DIR/bin"
: >"$DIR/chaos.log"

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
# The hard limit: the watchdog ends the run (and the EXIT trap stops everything).
( while [ "$(date +%s)" -lt "$DEADLINE" ]; do kill -0 $$ 2>/dev/null || exit 0; sleep 2; done
  echo "[$(ts)] budget of ${BUDGET}s exhausted: stopping the run" >>"$DIR/chaos.log"
  kill -TERM $$ 2>/dev/null ) &
WATCHDOG=$!

log "chaos run: month $MONTH ($DAYS days), $CUSTOMERS customers, seed $SEED, budget ${BUDGET}s; state in $DIR"
[ -n "$PGBIN" ] || die "no Postgres server binaries under /usr/lib/postgresql/*/bin (initdb, pg_ctl)"
[ -x .pcn/bin/temporal ] || die "no .pcn/bin/temporal: run 'bash scripts/tools.sh' (make tools) first"
command -v psql >/dev/null || die "psql not found"
command -v curl >/dev/null || die "curl not found"
for p in "$PG_PORT" "$T_PORT" $((BASE + 43)) $((BASE + 44)) "$BANK_PORT" "$CARRIER_PORT" "$WEBHOOK_PORT" "$API_PORT" "$HEALTH_PORT" $((BASE + 65)); do
  if port_up "$p"; then
    die "port 127.0.0.1:$p is already in use (another chaos run? set PCN_CHAOS_PORT_BASE / PCN_CHAOS_PG_PORT)"
  fi
done

phase "build"
if [ "${PCN_CHAOS_SKIP_BUILD:-0}" != 1 ]; then
  timeout "$(remaining)" cargo build --bins -q 2>&1 | tee -a "$DIR/build.log" \
    || die "cargo build --bins failed or ran out of time (see $DIR/build.log)"
fi
TARGET=${CARGO_TARGET_DIR:-target}
for b in pcn-worker pcnctl pcn-bank-sim pcn-carrier-sim; do
  [ -x "$TARGET/debug/$b" ] || die "$TARGET/debug/$b missing"
  cp "$TARGET/debug/$b" "$DIR/bin/$b"
done
BIN=$DIR/bin

# The environment of every pcn-worker process (the control API starts the month: its settings too).
# As the application role (created by setup); setup alone connects as the superuser.
# The simulators accept the development secrets: say so explicitly (production refuses them).
export PCN_PROFILE=development
export PCN_DATABASE_URL=postgres://pcn_app@127.0.0.1:$PG_PORT/pcn
SETUP_URL=postgres://postgres@127.0.0.1:$PG_PORT/pcn
export PCN_TEMPORAL_ADDRESS=127.0.0.1:$T_PORT
export PCN_TEMPORAL_NAMESPACE=default
export PCN_TASK_QUEUE=pcn-chaos
export PCN_BANK_URL=http://127.0.0.1:$BANK_PORT
export PCN_CARRIER_URL=http://127.0.0.1:$CARRIER_PORT
export PCN_WEBHOOK_PUBLIC_URL=http://127.0.0.1:$WEBHOOK_PORT
export PCN_WEBHOOK_BIND=127.0.0.1:$WEBHOOK_PORT
export PCN_HTTP_BIND=127.0.0.1:$HEALTH_PORT
export PCN_API_BIND=127.0.0.1:$API_PORT
export PCN_API_ADDRESS=http://127.0.0.1:$API_PORT
export PCN_SDK_METRICS_BIND=127.0.0.1:$((BASE + 65))
export PCN_SMS_WINDOW=always
export PCN_SMS_BATCH_MAX=${PCN_CHAOS_SMS_BATCH:-10}
export PCN_NOTIFICATION_POLL_SECS=2
export PCN_SMS_RETRY_DELAY_SECS=15
export PCN_SMS_CONFIRMATION_TIMEOUT_SECS=240
export PCN_SMS_POLL_INTERVAL_SECS=20
export PCN_SMS_RECONCILE_SECS=15
export PCN_SWEEP_HEARTBEAT_TIMEOUT_SECS=10
export PCN_SWEEP_PAGE_SIZE=50        # several pages a day: a crash lands in the middle of a day
export PCN_SWEEP_CONCURRENCY=8
export PCN_BANK_BACKOFF_MS=500
export PGCONNECT_TIMEOUT=5
unset PCN_FAILPOINT

PSQL=(psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres)
sql() { "${PSQL[@]}" -d pcn -At -v ON_ERROR_STOP=1 -c "$1" 2>/dev/null; }
num() { local v; v=$(sql "$1") && [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo 0; }
# The control API's tokens, one per role, made fresh for the run (the server gets only their
# hashes); pcnctl is given a token in its environment, never on its command line.
declare -A TOKEN=()
PCN_API_TOKENS=""
for role in viewer operator admin; do
  made=$("$BIN/pcn-worker" hash-token --generate) || die "pcn-worker hash-token --generate failed"
  TOKEN[$role]=$(sed -n 's/^token: //p' <<<"$made")
  PCN_API_TOKENS+="chaos-$role:$role:$(sed -n 's/^sha256: //p' <<<"$made"),"
done
export PCN_API_TOKENS
ctl() { # role pcnctl-arguments...: pcnctl with that role's token (each call bounded by --timeout)
  local role=$1; shift
  PCN_API_TOKEN=${TOKEN[$role]} "$BIN/pcnctl" "$@"
}
# The month as GetMonth shows it (pretty JSON, top-level fields indented by two spaces). Its phase
# is UNSPECIFIED while the run does not answer its `progress` query (no worker polling): that, an
# empty answer or a failed call (Temporal or the API away) is "phase unknown".
month_json() { ctl viewer --timeout 15 --json month get "$MONTH" 2>>"$DIR/month-get.err"; }
month_phase() {
  { month_json || true; } | sed -n 's/^  "phase": "\([A-Z_]*\)".*/\1/p' | grep -vx UNSPECIFIED | head -n 1 || true
}
blocked_reason() { { month_json || true; } | sed -n 's/^  "blocked_reason": "\(.*\)",\{0,1\}$/\1/p' | head -n 1; }
phase_known() { [ -n "$(month_phase)" ]; }
setup_ok() { PCN_DATABASE_SETUP_URL=$SETUP_URL "$BIN/pcn-worker" setup >>"$DIR/setup.log" 2>&1; }

start_temporal() {
  spawn temporal "$ROOT/.pcn/bin/temporal" server start-dev --headless --ip 127.0.0.1 \
    --port "$T_PORT" --http-port $((BASE + 43)) --metrics-port $((BASE + 44)) \
    --db-filename "$DIR/temporal.db" \
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
    $(search_attribute_flags) \
    --log-level warn
  wait_port "the Temporal dev server" "$T_PORT" 180
}
start_worker() {
  spawn worker "$BIN/pcn-worker" run
  wait_port "the worker's health endpoint" "$HEALTH_PORT" 120
}
pg_ready() { "${PSQL[@]}" -d postgres -tAc "SELECT 1" >/dev/null 2>&1; }

# A process of ours that died by itself is a finding: counted (check "unexpected process exits")
# and restarted so the run can go on.
watch_processes() {
  local name pid rc
  for name in temporal bank carrier api webhook worker; do
    pid=${PID[$name]:-}
    [ -n "$pid" ] || continue
    alive "$pid" && continue
    rc=0; wait "$pid" 2>/dev/null || rc=$?
    UNEXPECTED=$((UNEXPECTED + 1))
    log "UNEXPECTED: $name (pid $pid) exited by itself with status $rc; tail of $DIR/$name.log:"
    tail -n 15 "$DIR/$name.log" | sed 's/^/    /' | tee -a "$DIR/chaos.log"
    unset "PID[$name]"
    # shellcheck disable=SC2086
    spawn "$name" ${CMD[$name]}
    log "restarted $name (pid ${PID[$name]})"
  done
}

# Counts that move whenever the month moves: used to see whether the worker resumed by itself.
fingerprint() {
  sql "SELECT concat_ws(':', (SELECT count(*) FROM balance_checks), (SELECT count(*) FROM qualifications),
         (SELECT count(*) FROM notifications), (SELECT count(*) FROM notifications WHERE finished_at IS NOT NULL),
         (SELECT count(*) FROM sms_attempts), (SELECT count(*) FROM sms_attempts WHERE status <> 'SUBMITTING'),
         (SELECT count(*) FROM delivery_events WHERE signal_state <> 'PENDING'))" || echo "?"
}
status_line() {
  log "  status: $(sql "SELECT format('checks %s/%s, qualified %s, notifications %s (final %s), attempts %s (submitting %s), events %s (pending %s)',
      (SELECT count(*) FROM balance_checks), $CUSTOMERS * $DAYS,
      (SELECT count(*) FROM qualifications WHERE qualified), (SELECT count(*) FROM notifications),
      (SELECT count(*) FROM notifications WHERE finished_at IS NOT NULL), (SELECT count(*) FROM sms_attempts),
      (SELECT count(*) FROM sms_attempts WHERE status = 'SUBMITTING'), (SELECT count(*) FROM delivery_events),
      (SELECT count(*) FROM delivery_events WHERE signal_state = 'PENDING'))" || echo "database not answering")"
}

# After Temporal came back: the worker must answer the month's `progress` query (queries are
# answered by a polling worker; GetMonth's phase is known only when it did) and the month must
# move (or be COMPLETED) within 90 s. If not, the worker is restarted (logged as a fault: it did
# not reconnect by itself) and gets 90 s more.
moved() {
  [ "$(fingerprint)" != "$BASELINE" ] || return 1
  phase_known
}
resumed() { moved || [ "$(month_phase)" = COMPLETED ]; }
ensure_resumed() {
  BASELINE=$(fingerprint)
  if poll_until 90 resumed; then
    log "Temporal back (pid ${PID[temporal]}); the worker resumed by itself (phase $(month_phase))"
    return 0
  fi
  fault "worker (pid ${PID[worker]}) restarted: it did not resume within 90 s after Temporal came back"
  stop_proc worker KILL
  start_worker
  BASELINE=$(fingerprint)
  poll_until 90 resumed || die "the month did not move within 90 s even after the worker was restarted"
  log "the month moves again after the worker restart (phase $(month_phase))"
}

phase "start services"
log "Postgres: initdb into $DIR/pg (127.0.0.1:$PG_PORT)"
mkdir -p "$DIR/pg" "$DIR/pgsock"
touch "$DIR/postgres.log"
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR/pg" "$DIR/pgsock" "$DIR/postgres.log"; fi
chmod 700 "$DIR/pg"
as_pg "$PGBIN/initdb" -D "$DIR/pg" -U postgres -A trust -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
  || die "initdb failed (see $DIR/initdb.log)"
cat >>"$DIR/pg/postgresql.conf" <<CONF
# chaos run
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/pgsock'
max_connections = 200
CONF
pg_ctl_ start -w -t 120 >/dev/null || die "Postgres did not start (see $DIR/postgres.log)"
wait_for "Postgres answering on 127.0.0.1:$PG_PORT" 120 pg_ready
"${PSQL[@]}" -d postgres -c "CREATE DATABASE pcn" || die "CREATE DATABASE pcn failed"

log "Temporal dev server (file-backed: $DIR/temporal.db) on 127.0.0.1:$T_PORT"
start_temporal
wait_for "pcn-worker setup (roles, migrations, grants, search attributes)" 180 setup_ok

log "bank simulator on :$BANK_PORT (503 at ${BANK_503} ppm, ${BANK_LATENCY} ms), carrier simulator on :$CARRIER_PORT"
"$BIN/pcn-bank-sim" --accounts "$CUSTOMERS" --seed "$SEED" --customers-csv "$DIR/customers.csv" >>"$DIR/bank.log" 2>&1 \
  || die "pcn-bank-sim --customers-csv failed (see $DIR/bank.log)"
spawn bank "$BIN/pcn-bank-sim" --accounts "$CUSTOMERS" --seed "$SEED" --bind "127.0.0.1:$BANK_PORT" \
  --error-503-ppm "$BANK_503" --latency-ms "$BANK_LATENCY"
wait_port "the bank simulator" "$BANK_PORT"
carrier_args=(--bind "127.0.0.1:$CARRIER_PORT" --seed "$SEED" --answer-delay-ms 300 --callback-delay-ms 300
  --inbound-generic-url "http://127.0.0.1:$WEBHOOK_PORT/webhooks/sms-inbound")
[ "$CARRIER_RATE" = 0 ] || carrier_args+=(--rate-limit-per-sec "$CARRIER_RATE")
spawn carrier "$BIN/pcn-carrier-sim" "${carrier_args[@]}"
wait_port "the carrier simulator" "$CARRIER_PORT"
log "control API on :$API_PORT (tokens: viewer, operator, admin)"
spawn api "$BIN/pcn-worker" api
wait_port "the control API" "$API_PORT"
ctl admin --timeout 600 customer import "$DIR/customers.csv" >>"$DIR/setup.log" 2>&1 \
  || die "pcnctl customer import failed (see $DIR/setup.log)"
[ "$(num "SELECT count(*) FROM customers")" = "$CUSTOMERS" ] || die "expected $CUSTOMERS customers after the import"
spawn webhook "$BIN/pcn-worker" webhook
wait_port "the webhook" "$WEBHOOK_PORT"
start_worker
log "services up: worker ${PID[worker]}, webhook ${PID[webhook]}, api ${PID[api]}, temporal ${PID[temporal]}"

phase "fault 1: worker kill -9 during the sweeps"
ctl operator month start "$MONTH" >>"$DIR/setup.log" 2>&1 || die "pcnctl month start failed (see $DIR/setup.log)"
log "started qualification/$MONTH"
mid_day() { # at least two days swept and, if it can be caught, part of a day
  local n; n=$(num "SELECT count(*) FROM balance_checks")
  [ "$n" -ge $((CUSTOMERS * 4)) ] || { [ "$n" -ge $((CUSTOMERS * 2)) ] && [ $((n % CUSTOMERS)) -ne 0 ]; }
}
wait_for "at least 2 days of balance checks (to kill the worker mid-sweep)" 240 mid_day
fault "kill -9 worker (pid ${PID[worker]}) during the sweeps; balance_checks rows: $(num "SELECT count(*) FROM balance_checks")"
stop_proc worker KILL
sleep 1
start_worker
log "worker restarted (pid ${PID[worker]})"
status_line

phase "fault 2: Temporal kill -9 during the month"
reached() { # rows: at least this many balance checks, or the sweeps are over
  [ "$(num "SELECT count(*) FROM balance_checks")" -ge "$1" ] || [ "$(num "SELECT count(*) FROM qualifications")" -gt 0 ]
}
wait_for "8 days of balance checks" 300 reached $((CUSTOMERS * 8))
fault "kill -9 Temporal dev server (pid ${PID[temporal]}); balance_checks rows: $(num "SELECT count(*) FROM balance_checks")"
stop_proc temporal KILL
sleep 3
start_temporal
ensure_resumed
status_line

phase "fault 3: Postgres restart -m fast, later -m immediate"
wait_for "14 days of balance checks" 300 reached $((CUSTOMERS * 14))
fault "Postgres pg_ctl restart -m fast; balance_checks rows: $(num "SELECT count(*) FROM balance_checks")"
pg_ctl_ restart -m fast -w -t 120 >/dev/null || die "pg_ctl restart -m fast failed (see $DIR/postgres.log)"
wait_for "Postgres answering after restart -m fast" 120 pg_ready
status_line
wait_for "22 days of balance checks" 300 reached $((CUSTOMERS * 22))
fault "Postgres pg_ctl restart -m immediate (crash recovery); balance_checks rows: $(num "SELECT count(*) FROM balance_checks")"
pg_ctl_ restart -m immediate -w -t 120 >/dev/null || die "pg_ctl restart -m immediate failed (see $DIR/postgres.log)"
wait_for "Postgres answering after restart -m immediate" 120 pg_ready
status_line

phase "fault 4: Temporal down for ${TEMPORAL_DOWN}s while callbacks arrive"
sms_out() { [ "$(num "SELECT count(*) FROM sms_attempts WHERE carrier_message_id IS NOT NULL")" -ge 1 ]; }
wait_for "SMS going out (an sms_attempts row with a carrier id)" 600 sms_out
fault "kill -9 Temporal dev server (pid ${PID[temporal]}) for ${TEMPORAL_DOWN}s; sms_attempts rows: $(num "SELECT count(*) FROM sms_attempts")"
events_before=$(num "SELECT count(*) FROM delivery_events")
stop_proc temporal KILL
max_pending=0
end=$(($(date +%s) + TEMPORAL_DOWN))
while [ "$(date +%s)" -lt "$end" ]; do
  p=$(num "SELECT count(*) FROM delivery_events WHERE signal_state = 'PENDING'")
  [ "$p" -le "$max_pending" ] || max_pending=$p
  sleep 1
done
log "while Temporal was down: $(( $(num "SELECT count(*) FROM delivery_events") - events_before )) callbacks stored, up to $max_pending PENDING at once"
FAULTS+=("          (callbacks stored PENDING while Temporal was down: up to $max_pending at once)")
start_temporal
ensure_resumed
status_line

phase "fault 5: worker kill -9 during SMS submissions"
in_flight() {
  [ "$(num "SELECT count(*) FROM sms_attempts WHERE status = 'SUBMITTING'")" -ge 1 ] && return 0
  # Nothing left to submit: kill anyway (logged).
  [ "$(num "SELECT count(*) FROM notifications WHERE finished_at IS NULL")" -eq 0 ] \
    && [ "$(num "SELECT count(*) FROM notifications")" -ge 1 ] && return 0
  return 1
}
wait_for "an SMS submission in flight (sms_attempts row in SUBMITTING)" 300 in_flight
fault "kill -9 worker (pid ${PID[worker]}) during SMS submissions; sms_attempts: $(sql "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM sms_attempts GROUP BY 1 ORDER BY 1) x")"
stop_proc worker KILL
sleep 1
start_worker
log "worker restarted (pid ${PID[worker]})"
status_line

phase "wait for COMPLETED"
LAST_STATUS=$(date +%s)
completed() {
  local p; p=$(month_phase)
  [ "$p" = COMPLETED ] && return 0
  [ "$p" != BLOCKED ] || die "the month is BLOCKED: $(blocked_reason)"
  if [ $(($(date +%s) - LAST_STATUS)) -ge 15 ]; then
    LAST_STATUS=$(date +%s)
    log "  phase ${p:-unknown}"; status_line
  fi
  return 1
}
wait_for "the month's phase COMPLETED (pcnctl month get)" 900 completed
status_line

phase "settle: delivery events PENDING = 0"
no_pending() { [ "$(num "SELECT count(*) FROM delivery_events WHERE signal_state = 'PENDING'")" = 0 ] && pg_ready; }
if ! poll_until 120 no_pending; then
  log "delivery events still PENDING after 120 s (the check below will say so)"
fi
sleep 3   # late duplicate callbacks from the carrier

phase "checks"
FINAL_PHASE=$(month_phase)
curl_json() { curl -fsS --max-time 10 "http://127.0.0.1:$CARRIER_PORT$1" 2>/dev/null || echo '{}'; }
COUNTS=$(curl_json /admin/messages/counts)
REPEATS=$(curl_json /admin/repeats)
STATS=$(curl_json /admin/stats)
echo "$COUNTS" >"$DIR/carrier-message-counts.json"
echo "$REPEATS" >"$DIR/carrier-repeats.json"
echo "$STATS" >"$DIR/carrier-stats.json"
# The phones in clear come from the import file: the database holds them sealed (PCN_PHONE_KEYS).
# `customer_id,+972…` per line; the file's numbers are local (050-…) or already international.
PHONES=$(awk -F, 'NR > 1 { p = $4; gsub(/[^0-9+]/, "", p); if (substr(p, 1, 1) != "+") p = "+972" substr(p, 2); print $1 "," p }' "$DIR/customers.csv")
TABLE=$("${PSQL[@]}" -d pcn -f scripts/chaos_checks.sql -v month="$MONTH_FIRST" -v counts="$COUNTS" \
  -v repeats="$REPEATS" -v phase="${FINAL_PHASE:-unknown}" -v exits="$UNEXPECTED" -v phones="$PHONES" 2>&1) \
  || die "the checks could not be computed: $TABLE"
phase ""

echo
echo "Faults injected:"
for f in "${FAULTS[@]}"; do echo "  $f"; done
echo
echo "Elapsed per phase:"
for p in "${PHASES[@]}"; do printf '  %-58s %5ss\n' "${p%|*}" "${p##*|}"; done
printf '  %-58s %5ss\n' "total" "$(elapsed)"
echo
echo "For information:"
echo "  in-doubt resolutions by kind: $(sql "SELECT coalesce(string_agg(resolution || ' ' || n, ', '), 'none') FROM (SELECT resolution, count(*) n FROM in_doubt_resolutions GROUP BY 1 ORDER BY 1) x")"
echo "  notifications by status:      $(sql "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM notifications WHERE month = '$MONTH_FIRST' GROUP BY 1 ORDER BY 1) x")"
echo "  sms_attempts by status:       $(sql "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM sms_attempts WHERE month = '$MONTH_FIRST' GROUP BY 1 ORDER BY 1) x")"
echo "  delivery events by state:     $(sql "SELECT string_agg(signal_state || ' ' || n, ', ') FROM (SELECT signal_state, count(*) n FROM delivery_events GROUP BY 1 ORDER BY 1) x")"
echo "  decisions by reason:          $(sql "SELECT string_agg(reason || ' ' || n, ', ') FROM (SELECT reason, count(*) n FROM qualifications WHERE month = '$MONTH_FIRST' GROUP BY 1 ORDER BY 1) x")"
echo "  carrier stats:                $STATS"
echo
FAILS=0
printf '%-44s | %-10s | %-10s | %s\n' "check" "expected" "actual" "result"
printf '%s\n' "---------------------------------------------+------------+------------+-------"
while IFS='|' read -r name expected actual result; do
  [ -n "$name" ] || continue
  printf '%-44s | %-10s | %-10s | %s\n' "$name" "$expected" "$actual" "$result"
  [ "$result" = OK ] || FAILS=$((FAILS + 1))
done <<<"$TABLE"
echo
if [ "$FAILS" = 0 ]; then
  log "chaos run PASSED: every check OK ($(elapsed)s)"
  STATUS=0
else
  log "chaos run FAILED: $FAILS check(s) failed ($(elapsed)s)"
  STATUS=1
fi
exit "$STATUS"

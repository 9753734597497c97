#!/usr/bin/env bash
# `make bench`: release build, then the benchmark binary (figures printed and written to
# target/bench/results.json). PCN_BENCH_CUSTOMERS overrides the 100,000 customers of the sweep,
# PCN_BENCH_SMS_CUSTOMERS the 2,000 of the SMS benchmarks. Extra arguments go to the binary
# (e.g. `--only sms`, `--only sweep`; `--help` lists them).
#
# The SMS benchmarks start their own Temporal dev server (.pcn/bin/temporal, installed by
# tools.sh) on 127.0.0.1:17433 — file-backed SQLite at target/bench/temporal.db, WAL pragmas,
# our search attributes — and stop it when they end; its log is target/bench/temporal-devserver.log.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
cargo build --release -p pcn-bench
./target/release/pcn-bench "$@"

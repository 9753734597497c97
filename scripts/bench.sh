#!/usr/bin/env bash
# `make bench`: release build, then the benchmark binary (figures printed and written to
# target/bench/results.json). PCN_BENCH_CUSTOMERS overrides the 100,000 customers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
cargo build --release -p pcn-bench
./target/release/pcn-bench "$@"

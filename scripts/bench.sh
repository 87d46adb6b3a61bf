#!/usr/bin/env bash
# Whole-system benchmarks: builds the release server and the bench driver,
# then runs every phase against a fresh `skiff server` on 127.0.0.1. Each
# figure is printed beside its floor measured in the same run (raw SQLite on
# the same disk). Nothing is asserted.
#
# Knobs (environment): BENCH_PHASES=create,list,watch,apply,durability,schedule,node,service
#   BENCH_SECONDS=20 BENCH_CLIENTS=32 BENCH_FLOOR_SECONDS=3 BENCH_PODS=10000
#   BENCH_LIST_RUNS=10 BENCH_WATCHERS=500 BENCH_WATCH_WRITES=20
#   BENCH_DURABILITY_SECONDS=3 BENCH_NODES=1000 BENCH_SCHED_PODS=10000
#   BENCH_SCHED_RUNS=plain,anti-affinity BENCH_SCHED_TIMEOUT=300
#   BENCH_NODE_PODS=30 BENCH_NODE_MANY=100 BENCH_SVC_COUNT=1000 BENCH_SVC_ENDPOINTS=10
#   BENCH_DIR=/var/tmp BENCH_KEEP=1
# See bench/README.md for what each figure means.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/skiff/target}

cargo build --release -p skiff -p bench
exec "$CARGO_TARGET_DIR/release/bench" --skiff "$CARGO_TARGET_DIR/release/skiff" "$@"

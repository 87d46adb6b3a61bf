#!/usr/bin/env bash
# The whole test suite: unit tests, in-process API tests, and end-to-end
# tests that drive the real kubectl (and the Python client) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/skiff/target}

if ! command -v kubectl >/dev/null; then
  echo "kubectl is required for the end-to-end tests" >&2
  exit 1
fi
if ! python3 -c 'import kubernetes' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes
fi

cargo build -p skiff
cargo test --workspace -- --test-threads=4

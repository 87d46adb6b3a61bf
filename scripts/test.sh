#!/usr/bin/env bash
# The whole test suite: unit tests, in-process API tests, and end-to-end
# tests that drive the real kubectl (and the Python client) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/skiff/target}

need=()
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3 python3-pip)
# The node agent's runtime (containerd, runc, CNI plugins), the CRI protocol
# compiler, and busybox-static for the test images.
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v docker-registry >/dev/null || need+=(docker-registry)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v kubectl >/dev/null; then
  echo "kubectl is required for the end-to-end tests" >&2
  exit 1
fi
if ! python3 -c 'import kubernetes' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes
fi

# The test images the node tests import (built from local parts).
scripts/images.sh

# Formatting and lints are part of passing.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast -- --test-threads=4 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

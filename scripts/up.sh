#!/usr/bin/env bash
# Builds skiff if needed, installs the node runtime packages if missing, and
# runs `skiff server` with the embedded SQLite store in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/skiff/target}

missing=()
for cmd in containerd runc nft; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
[ -x /usr/lib/cni/bridge ] || missing+=(cni)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  echo "installing runtime packages (missing: ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc containernetworking-plugins nftables iproute2 >/dev/null
fi

cargo build --release -p skiff
exec "$CARGO_TARGET_DIR/release/skiff" server "$@"

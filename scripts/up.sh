#!/usr/bin/env bash
# Builds skiff if needed, installs the node runtime packages if missing, and
# runs `skiff server` with the embedded SQLite store in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/skiff/target}

missing=()
for cmd in containerd runc nft protoc; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
[ -x /usr/lib/cni/bridge ] || missing+=(cni)
[ -x /bin/busybox ] || missing+=(busybox)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  echo "installing runtime packages (missing: ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc containernetworking-plugins \
    nftables iproute2 protobuf-compiler busybox-static >/dev/null
fi

cargo build --release -p skiff
# The pause, busybox and demo images: the agent imports whatever tarballs
# it finds in <data-dir>/agent/images at start (air-gapped, as k3s does).
scripts/images.sh >/dev/null
data_dir=${SKIFF_DATA_DIR:-/var/lib/skiff}
prev=
for arg in "$@"; do
  case "$prev" in -d|--data-dir) data_dir=$arg ;; esac
  prev=$arg
done
mkdir -p "$data_dir/agent/images"
cp -u "${SKIFF_IMAGES_DIR:-$CARGO_TARGET_DIR/images}"/*.tar "$data_dir/agent/images/"
exec "$CARGO_TARGET_DIR/release/skiff" server "$@"

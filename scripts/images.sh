#!/usr/bin/env bash
# Builds the test images as OCI layout tarballs from local parts (no network):
#   localhost/pause:3.10       -> pause.tar    (pod sandbox)
#   localhost/busybox:1.35     -> busybox.tar  (Debian's busybox-static)
#   localhost/skiff-demo:0.1   -> demo.tar     (images/demo)
# into ${SKIFF_IMAGES_DIR:-$CARGO_TARGET_DIR/images}. Outputs are
# reproducible and left untouched when unchanged, so a rerun is quick and the
# agent does not re-import them.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${CARGO_TARGET_DIR:=/var/cache/skiff/target}"
OUT="${SKIFF_IMAGES_DIR:-$CARGO_TARGET_DIR/images}"
BUILD="$CARGO_TARGET_DIR/images-build"
TARGET=x86_64-unknown-linux-gnu
mkdir -p "$OUT" "$BUILD"

# busybox-static (not the dynamic `busybox` package): the binary must run in
# an image with no libc.
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed"; then
    echo "installing busybox-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >/dev/null
fi

# Static glibc binaries. --target keeps RUSTFLAGS off build scripts; the
# separate target dir keeps them off the main workspace.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
    --manifest-path images/Cargo.toml --target "$TARGET" --target-dir "$BUILD"
BIN="$BUILD/$TARGET/release"

ROOTFS="$BUILD/rootfs"
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"/{pause,busybox,demo}
# Owner root in the tarballs regardless of who builds; modes from here.
common_dirs() {
    mkdir -p "$1"/{dev,proc,sys,etc,root,tmp}
    chmod 1777 "$1/tmp"
    chmod 700 "$1/root"
    install -m 644 images/files/passwd "$1/etc/passwd"
    install -m 644 images/files/group "$1/etc/group"
}

# pause
install -m 755 "$BIN/pause" "$ROOTFS/pause/pause"

# busybox: the binary and a /bin symlink per applet
common_dirs "$ROOTFS/busybox"
mkdir -p "$ROOTFS/busybox"/{bin,www,var,home}
install -m 755 /bin/busybox "$ROOTFS/busybox/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$ROOTFS/busybox/bin/$applet"
done
install -m 644 images/files/index.html "$ROOTFS/busybox/www/index.html"

# demo
common_dirs "$ROOTFS/demo"
install -m 755 "$BIN/demo" "$ROOTFS/demo/demo"

"$BIN/image-build" --name localhost/pause:3.10 --rootfs "$ROOTFS/pause" \
    --entrypoint '["/pause"]' --out "$OUT/pause.tar"
"$BIN/image-build" --name localhost/busybox:1.35 --rootfs "$ROOTFS/busybox" \
    --cmd '["sh"]' --out "$OUT/busybox.tar"
"$BIN/image-build" --name localhost/skiff-demo:0.1 --rootfs "$ROOTFS/demo" \
    --entrypoint '["/demo"]' --env PORT=8080 --port 8080/tcp --out "$OUT/demo.tar"

echo "images in $OUT:"
ls -l "$OUT"/pause.tar "$OUT"/busybox.tar "$OUT"/demo.tar

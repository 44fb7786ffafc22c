#!/usr/bin/env bash
# Builds the hostile test images from the default image: its kernel, and its initramfs with
# redis, dropbear and ferry-guest taken out and /init replaced by one that execs hostile-guest.
# One image directory per mode, OUT_DIR/hostile-MODE/, differing only in image.json's command
# line (ferry.hostile=MODE); the kernel and initramfs are hard links to one copy.
#
# usage: build-image.sh OUT_DIR DEFAULT_IMAGE_DIR HOSTILE_GUEST_BIN INIT MODE...
set -euo pipefail

die() {
  echo "hostile build-image.sh: $*" >&2
  exit 1
}

[[ $# -ge 5 ]] || die "usage: build-image.sh OUT_DIR DEFAULT_IMAGE_DIR HOSTILE_GUEST_BIN INIT MODE..."
OUT_DIR=$(realpath -m "$1")
DEFAULT_DIR=$(realpath -m "$2")
AGENT=$(realpath -m "$3")
INIT=$(realpath -m "$4")
shift 4
MODES=("$@")

[[ -f $DEFAULT_DIR/image.json ]] || die "$DEFAULT_DIR/image.json is missing; build target image-default"
[[ -x $AGENT ]] || die "$AGENT is missing; build target hostile-guest"

json_string() {  # key: the string value of "key" in the default image.json
  sed -n "s/^  \"$1\": \"\(.*\)\",\$/\1/p" "$DEFAULT_DIR/image.json"
}
KERNEL=$(json_string kernel)
CMDLINE=$(json_string cmdline)
[[ -n $KERNEL && -n $CMDLINE ]] || die "cannot read kernel and cmdline from $DEFAULT_DIR/image.json"
# The hostile guest runs no services.
CMDLINE=$(sed 's/ *ferry\.services=[^ ]*//' <<<"$CMDLINE")

SHARED=$OUT_DIR/hostile.files
ROOT=$OUT_DIR/hostile.rootfs.tmp
rm -rf "$ROOT" "$SHARED"
mkdir -p "$ROOT" "$SHARED"
(cd "$ROOT" && gzip -dc "$DEFAULT_DIR/initramfs.cpio.gz" | cpio -idm --quiet --no-absolute-filenames)
[[ -f $ROOT/etc/ferry/modules ]] || die "the default initramfs has no etc/ferry/modules"
rm -rf "$ROOT/usr/bin/redis-server" "$ROOT/usr/sbin/dropbear" "$ROOT/usr/bin/dropbearkey" \
       "$ROOT/sbin/ferry-guest" "$ROOT/lib/x86_64-linux-gnu" "$ROOT/lib64" "$ROOT/usr/lib"
install -m 0755 "$INIT" "$ROOT/init"
install -m 0755 "$AGENT" "$ROOT/sbin/hostile-guest"
if command -v strip >/dev/null 2>&1; then strip --strip-all "$ROOT/sbin/hostile-guest"; fi

(cd "$ROOT" && find . -exec touch -h -d @0 {} + &&
  find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet | gzip -6 -n) \
  >"$SHARED/initramfs.cpio.gz"
rm -rf "$ROOT"
cp "$DEFAULT_DIR/$KERNEL" "$SHARED/$KERNEL"

for mode in "${MODES[@]}"; do
  dir=$OUT_DIR/hostile-$mode
  rm -rf "$dir"
  mkdir -p "$dir"
  ln "$SHARED/$KERNEL" "$dir/$KERNEL"
  ln "$SHARED/initramfs.cpio.gz" "$dir/initramfs.cpio.gz"
  cat >"$dir/image.json.tmp" <<JSON
{
  "format": "ferry-image",
  "version": 1,
  "name": "hostile-$mode",
  "kernel": "$KERNEL",
  "initrd": "initramfs.cpio.gz",
  "cmdline": "$CMDLINE ferry.hostile=$mode",
  "ready_marker": "hostile-guest: starting",
  "services": []
}
JSON
  mv "$dir/image.json.tmp" "$dir/image.json"
done
echo "hostile build-image.sh: ${#MODES[@]} images in $OUT_DIR (initramfs $(( $(stat -c %s "$SHARED/initramfs.cpio.gz") / 1024 )) KiB)"

#!/usr/bin/env bash
# Builds the default ferry guest image from Debian packages:
#   OUT_DIR/vmlinuz            the Debian kernel, taken from its .deb (never installed on the host)
#   OUT_DIR/vmlinux            the same kernel decompressed: an ELF that QEMU boots through its
#                              PVH entry point. Under TCG this saves the ~3 s the compressed
#                              kernel spends decompressing itself at every boot; image.json
#                              names it as the kernel when it could be made (else vmlinuz).
#   OUT_DIR/initramfs.cpio.gz  busybox, the virtio modules, ferry-guest, redis-server, dropbear
#   OUT_DIR/image.json         what ferryd needs to boot it (cmdline, ready marker, services)
#
# usage: build-default.sh OUT_DIR FERRY_GUEST_BIN
#
# The kernel .deb and the files taken from it are cached in OUT_DIR/../cache (override with
# FERRY_IMAGE_CACHE), so a rebuild does not download again. The initramfs is built with fixed
# owners and timestamps, so the same inputs give the same bytes.
set -euo pipefail

die() {
  echo "build-default.sh: $*" >&2
  exit 1
}

[[ $# -eq 2 ]] || die "usage: build-default.sh OUT_DIR FERRY_GUEST_BIN"
OUT_DIR=$(realpath -m "$1")
GUEST_BIN=$(realpath -m "$2")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=$(realpath -m "${FERRY_IMAGE_CACHE:-$OUT_DIR/../cache}")

# Boot flags, chosen for a fast boot under TCG:
#   quiet               kernel messages on the emulated UART cost real time
#   panic=-1            reboot at once on panic; with QEMU -no-reboot the VM exits, not hangs
#   cryptomgr.notests   Debian's kernel runs crypto self-tests at boot; slow when emulated
#   no_timer_check      skips the IO-APIC timer check, meant for real hardware
#   8250.nr_uarts=1     one serial port to probe, not four
#   random.trust_cpu=on seed the RNG from RDRAND (cpu max has it) so nothing waits for entropy
CMDLINE="console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check 8250.nr_uarts=1"
CMDLINE+=" random.trust_cpu=on ferry.services=redis:6379"
READY_MARKER="ferry-guest: ready"

# The virtio drivers the VM's devices need, in load order: every module follows the modules
# named in its depends= (checked below, since there is no depmod/modprobe in the guest). ext4
# mounts the data disk; it asks the crypto API for crc32c at mount, which cannot load a module
# by itself here, so crc32c_generic is loaded ahead.
MODULES=(failover net_failover virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev
         virtio_pci virtio_net virtio_console virtio_blk virtio-rng crc16 crc32c_generic mbcache jbd2 ext4)

# ---------------------------------------------------------------- host packages
need_package() {  # package [why]
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] ||
    die "host package '$1' is missing${2:+ ($2)}; run scripts/setup.sh to install it"
}
need_command() {  # command package
  command -v "$1" >/dev/null 2>&1 || die "command '$1' is missing (package '$2'); run scripts/setup.sh"
}
need_package busybox-static "busybox for the guest, statically linked"
need_package dropbear-bin
need_package redis-server
need_package cpio
need_command cpio cpio
need_command gzip gzip
need_command dpkg-deb dpkg
need_command apt-get apt
need_command ldd libc-bin
need_command sha256sum coreutils
[[ -x $GUEST_BIN ]] || die "ferry-guest binary '$GUEST_BIN' does not exist; build target ferry-guest"

BUSYBOX=/bin/busybox
REDIS=/usr/bin/redis-server
DROPBEAR=/usr/sbin/dropbear
DROPBEARKEY=/usr/bin/dropbearkey
for f in "$BUSYBOX" "$REDIS" "$DROPBEAR" "$DROPBEARKEY"; do
  [[ -x $f ]] || die "$f is missing although its package is installed; reinstall it"
done

# ---------------------------------------------------------------- kernel
mkdir -p "$CACHE_DIR/debs" "$CACHE_DIR/kernel" "$OUT_DIR"

# The ABI package linux-image-amd64 points at (linux-image-6.1.0-NN-amd64).
KERNEL_PKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
             awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }' || true)
if [[ -z $KERNEL_PKG ]]; then
  # Offline or no apt lists: use the newest kernel already in the cache, if any.
  KERNEL_PKG=$(find "$CACHE_DIR/debs" -name 'linux-image-[0-9]*_amd64.deb' -printf '%f\n' |
               sed 's/_.*//' | sort -V | tail -n 1)
  [[ -n $KERNEL_PKG ]] ||
    die "cannot tell which kernel linux-image-amd64 means (apt-cache depends failed); run apt-get update"
fi
KERNEL_VERSION=${KERNEL_PKG#linux-image-}   # what uname -r prints in the guest

find_deb() { find "$CACHE_DIR/debs" -maxdepth 1 -name "${KERNEL_PKG}_*_amd64.deb" | sort -V | tail -n 1; }
KERNEL_DEB=$(find_deb)
if [[ -z $KERNEL_DEB ]] || ! dpkg-deb --info "$KERNEL_DEB" >/dev/null 2>&1; then
  [[ -z $KERNEL_DEB ]] || rm -f "$KERNEL_DEB"   # a broken download
  echo "build-default.sh: downloading $KERNEL_PKG into $CACHE_DIR/debs"
  # Sandbox::User=root: as root, apt would otherwise warn that _apt cannot write the cache dir.
  (cd "$CACHE_DIR/debs" && apt-get -q -o APT::Sandbox::User=root download "$KERNEL_PKG") ||
    die "apt-get download $KERNEL_PKG failed; check the network and apt sources"
  KERNEL_DEB=$(find_deb)
  [[ -n $KERNEL_DEB ]] || die "apt-get download $KERNEL_PKG produced no .deb in $CACHE_DIR/debs"
fi
DEB_NAME=$(basename "$KERNEL_DEB" .deb)

# Only vmlinuz and the few modules are kept from the ~400 MB package.
KERNEL_DIR=$CACHE_DIR/kernel/$DEB_NAME
# The cache holds the modules of the list it was made with: a longer list extracts again.
for m in "${MODULES[@]}"; do
  [[ -f $KERNEL_DIR/modules/$m.ko ]] || rm -f "$KERNEL_DIR/complete"
done
if [[ ! -f $KERNEL_DIR/complete ]]; then
  echo "build-default.sh: extracting vmlinuz and modules from $(basename "$KERNEL_DEB")"
  rm -rf "$KERNEL_DIR" "$KERNEL_DIR.tmp"
  mkdir -p "$KERNEL_DIR.tmp/x"
  patterns=("./boot/vmlinuz-$KERNEL_VERSION" "./boot/config-$KERNEL_VERSION")
  for m in "${MODULES[@]}"; do patterns+=("./lib/modules/$KERNEL_VERSION/kernel/*/$m.ko"); done
  dpkg-deb --fsys-tarfile "$KERNEL_DEB" |
    tar -x -C "$KERNEL_DIR.tmp/x" --wildcards "${patterns[@]}" ||
    die "cannot extract the kernel and modules from $KERNEL_DEB"
  mkdir -p "$KERNEL_DIR.tmp/modules"
  mv "$KERNEL_DIR.tmp/x/boot/vmlinuz-$KERNEL_VERSION" "$KERNEL_DIR.tmp/vmlinuz"
  mv "$KERNEL_DIR.tmp/x/boot/config-$KERNEL_VERSION" "$KERNEL_DIR.tmp/config"
  for m in "${MODULES[@]}"; do
    found=$(find "$KERNEL_DIR.tmp/x" -name "$m.ko")
    [[ $(wc -l <<<"$found") -eq 1 && -n $found ]] ||
      die "module $m.ko found $(grep -c . <<<"$found") times in $KERNEL_PKG, expected once"
    mv "$found" "$KERNEL_DIR.tmp/modules/"
  done
  rm -rf "$KERNEL_DIR.tmp/x"
  touch "$KERNEL_DIR.tmp/complete"
  mv "$KERNEL_DIR.tmp" "$KERNEL_DIR"
fi

# The decompressed kernel, for PVH boot. The bzImage header gives where the compressed payload
# is (setup_sects at 0x1f1, payload_offset and payload_length at 0x248 and 0x24c).
extract_vmlinux() {  # bzImage out
  local setup_sects payload_offset payload_length start magic
  setup_sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$1" | tr -d ' ')
  ((setup_sects != 0)) || setup_sects=4
  payload_offset=$(od -An -tu4 -j $((0x248)) -N4 "$1" | tr -d ' ')
  payload_length=$(od -An -tu4 -j $((0x24c)) -N4 "$1" | tr -d ' ')
  start=$(((setup_sects + 1) * 512 + payload_offset))
  magic=$(od -An -tx1 -j "$start" -N6 "$1" | tr -d ' ')
  [[ $magic == fd377a585a00 ]] || { echo "payload is not xz (magic $magic)"; return 1; }
  command -v xz >/dev/null 2>&1 || { echo "xz is not installed (package xz-utils)"; return 1; }
  dd if="$1" iflag=skip_bytes,count_bytes skip="$start" count="$payload_length" status=none |
    xz -dc --single-stream >"$2.tmp" ||
    { echo "xz could not decompress the payload"; return 1; }
  [[ $(od -An -tx1 -N4 "$2.tmp" | tr -d ' ') == 7f454c46 ]] || { echo "payload is not an ELF"; return 1; }
  # QEMU boots an ELF kernel only through the PVH note (XEN_ELFNOTE_PHYS32_ENTRY, type 0x12).
  local notes
  if command -v readelf >/dev/null 2>&1; then
    notes=$(readelf -n "$2.tmp")
    [[ $notes == *"(0x00000012)"* || $notes == *PHYS32_ENTRY* ]] ||
      { echo "kernel has no PVH entry note (CONFIG_PVH)"; return 1; }
  fi
  mv "$2.tmp" "$2"
}
KERNEL_FILE=vmlinuz
if [[ -f $KERNEL_DIR/vmlinux ]]; then
  KERNEL_FILE=vmlinux
elif why=$(extract_vmlinux "$KERNEL_DIR/vmlinuz" "$KERNEL_DIR/vmlinux"); then
  KERNEL_FILE=vmlinux
else
  rm -f "$KERNEL_DIR/vmlinux.tmp"
  echo "build-default.sh: warning: booting the compressed kernel (slower under TCG): $why" >&2
fi

# Check the load order against each module's own depends= (from its .modinfo section).
modinfo_field() {  # ko field; awk reads to the end, so no SIGPIPE trips pipefail
  tr '\0' '\n' <"$1" | awk -v key="$2=" 'index($0, key) == 1 && !seen { print substr($0, length(key) + 1); seen = 1 }'
}
loaded=" "
for m in "${MODULES[@]}"; do
  ko=$KERNEL_DIR/modules/$m.ko
  for dep in $(modinfo_field "$ko" depends | tr ',' ' '); do
    [[ $loaded == *" ${dep//-/_} "* ]] ||
      die "module $m needs $dep loaded first; fix the order of MODULES in build-default.sh"
  done
  vermagic=$(modinfo_field "$ko" vermagic)
  [[ $vermagic == "$KERNEL_VERSION "* ]] ||
    die "module $m is for kernel '$vermagic', not $KERNEL_VERSION"
  loaded+="${m//-/_} "
done

# ---------------------------------------------------------------- root filesystem
ROOT=$OUT_DIR/rootfs.tmp
rm -rf "$ROOT"
mkdir -p "$ROOT"
cd "$ROOT"
mkdir -p bin sbin usr/bin usr/sbin lib lib64 etc/dropbear etc/ferry proc sys dev run tmp root var
ln -s ../run var/run
ln -s ../tmp var/tmp
chmod 1777 tmp
chmod 0700 root

# busybox and its applets (sh, mount, insmod, ip, udhcpc, ...) as symlinks.
install -m 0755 "$BUSYBOX" bin/busybox
"$BUSYBOX" --list-full | while read -r applet; do
  [[ -e $applet || -L $applet || $applet == linuxrc ]] && continue
  mkdir -p "$(dirname "$applet")"
  ln -s /bin/busybox "$applet"
done

# A dynamically linked program with the libraries and loader it needs, at the host's paths.
install_program() {  # host_path root_path
  install -D -m 0755 "$1" "$ROOT/$2"
  local lib
  for lib in $(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    [[ -e $ROOT$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$ROOT$lib"
  done
}
install_program "$REDIS" usr/bin/redis-server
install_program "$DROPBEAR" usr/sbin/dropbear
install_program "$DROPBEARKEY" usr/bin/dropbearkey

# ferry-guest, without debug info (kept in the build tree): the initramfs is unpacked, and
# every byte of it decompressed, by an emulated CPU at each boot.
install -m 0755 "$GUEST_BIN" sbin/ferry-guest
if command -v strip >/dev/null 2>&1; then strip --strip-all sbin/ferry-guest; fi

mkdir -p "lib/modules/$KERNEL_VERSION"
: >etc/ferry/modules
for m in "${MODULES[@]}"; do
  cp "$KERNEL_DIR/modules/$m.ko" "lib/modules/$KERNEL_VERSION/"
  echo "/lib/modules/$KERNEL_VERSION/$m.ko" >>etc/ferry/modules
done

install -m 0755 "$HERE/init" init
install -m 0755 "$HERE/udhcpc.script" etc/udhcpc.script
echo ferry >etc/hostname
: >etc/machine-id   # filled with a fresh id by /init at every boot
cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >etc/group <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat >etc/hosts <<'EOF'
127.0.0.1 localhost
127.0.1.1 ferry
EOF
cat >etc/nsswitch.conf <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
: >etc/resolv.conf   # written by udhcpc.script

# ---------------------------------------------------------------- archive and metadata
# Fixed owner and mtimes and sorted names: same inputs, same archive.
find . -exec touch -h -d @0 {} +
TMP_INITRD=$OUT_DIR/initramfs.cpio.gz.tmp
find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null --create --format=newc --owner=0:0 --reproducible --quiet | gzip -9 -n >"$TMP_INITRD"

# inputs_sha256 names the image's content: every file and symlink of the initramfs, the kernel
# and the command line. Equal hashes mean the same guest.
INPUTS_SHA256=$(
  {
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    find . -type l -printf 'link %p -> %l\n' | LC_ALL=C sort
    sha256sum "$KERNEL_DIR/$KERNEL_FILE" | awk -v f="$KERNEL_FILE" '{ print $1 "  " f }'
    echo "cmdline $CMDLINE"
  } | sha256sum | awk '{ print $1 }'
)
cd "$OUT_DIR"
rm -rf "$ROOT"

cp "$KERNEL_DIR/vmlinuz" vmlinuz.tmp
mv vmlinuz.tmp vmlinuz
rm -f vmlinux
if [[ $KERNEL_FILE == vmlinux ]]; then
  cp "$KERNEL_DIR/vmlinux" vmlinux.tmp
  mv vmlinux.tmp vmlinux
fi
mv "$TMP_INITRD" initramfs.cpio.gz
KERNEL_SHA256=$(sha256sum "$KERNEL_FILE" | awk '{ print $1 }')
INITRD_SHA256=$(sha256sum initramfs.cpio.gz | awk '{ print $1 }')

# Written last: an image.json means the two files beside it are complete.
cat >image.json.tmp <<EOF
{
  "format": "ferry-image",
  "version": 1,
  "name": "default",
  "kernel": "$KERNEL_FILE",
  "initrd": "initramfs.cpio.gz",
  "cmdline": "$CMDLINE",
  "ready_marker": "$READY_MARKER",
  "services": [{"name": "redis", "guest_port": 6379}],
  "kernel_version": "$KERNEL_VERSION",
  "kernel_package": "$DEB_NAME",
  "files": {
    "$KERNEL_FILE": {"sha256": "$KERNEL_SHA256", "size": $(stat -c %s "$KERNEL_FILE")},
    "initramfs.cpio.gz": {"sha256": "$INITRD_SHA256", "size": $(stat -c %s initramfs.cpio.gz)}
  },
  "inputs_sha256": "$INPUTS_SHA256"
}
EOF
mv image.json.tmp image.json
echo "build-default.sh: image in $OUT_DIR (kernel $KERNEL_VERSION, initramfs $(( $(stat -c %s initramfs.cpio.gz) / 1024 )) KiB)"

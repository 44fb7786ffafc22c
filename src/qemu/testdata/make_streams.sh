#!/usr/bin/env bash
# Writes the migration streams of migration_stream_test.cc with the host's qemu-system-x86_64 (7.2):
# a paused q35 guest with no OS and 64 MiB of RAM in a file that holds a pattern, saved with
# `migrate` to a file, gzipped.
#   pattern_share_off.mig.gz       RAM mapped share=off, x-ignore-shared off: every page is sent
#   pattern_ignore_shared.mig.gz   RAM mapped share=on, x-ignore-shared on: only ROM pages are sent
#   pattern_running.mig.gz         as share_off, but the guest runs (SeaBIOS, finding nothing to
#                                  boot) and the migration is held to 300 kB/s: many iterations,
#                                  pages sent again after the guest wrote them
# The pattern (kept in sync with the test): every 97th page, page i holds 128 times the 32 bytes
# le64(i * 4096) "ferry-mstream-pattern!!!"; every other byte is zero.
# With QEMU10=/path/to/qemu-system-x86_64 (10.0) it writes only qemu10_pattern_running.mig.gz,
# the running case with that QEMU (machine pc-q35-10.0: SWITCHOVER_START before RAM's END).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work/pattern.ram" <<'PY'
import struct, sys
size = 64 << 20
with open(sys.argv[1], "wb") as f:
    f.truncate(size)
    for i in range(0, size // 4096, 97):
        f.seek(i * 4096)
        f.write((struct.pack("<Q", i * 4096) + b"ferry-mstream-pattern!!!") * 128)
PY

qemu=qemu-system-x86_64
save() {  # save OUT IGNORE_SHARED SHARE [running]
  local out=$1 ignore=$2 share=$3 paused=-S bandwidth=0 wait=3
  if [[ ${4:-} == running ]]; then paused= bandwidth=300000 wait=9; fi
  cp "$work/pattern.ram" "$work/ram"
  {
    echo '{"execute":"qmp_capabilities"}'
    echo '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"x-ignore-shared","state":'"$ignore"'}]}}'
    if ((bandwidth)); then
      echo '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":'"$bandwidth"'}}'
    fi
    echo '{"execute":"migrate","arguments":{"uri":"exec:cat > '"$work/$out"'"}}'
    sleep "$wait"
    echo '{"execute":"query-migrate"}'
    echo '{"execute":"quit"}'
  } | "$qemu" -machine q35,memory-backend=ram0 -accel tcg -display none -nodefaults \
      $paused -qmp stdio -m 64 \
      -object memory-backend-file,id=ram0,size=64M,mem-path="$work/ram",share="$share" |
    grep -q '"status": "completed"' || { echo "make_streams: $out did not complete" >&2; exit 1; }
  gzip -9 -n <"$work/$out" >"$here/$out.gz"
}
if [[ -n ${QEMU10:-} ]]; then
  qemu=$QEMU10
  save qemu10_pattern_running.mig false off running
  exit 0
fi
save pattern_share_off.mig false off
save pattern_ignore_shared.mig true on
save pattern_running.mig false off running

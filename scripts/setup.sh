#!/usr/bin/env bash
# Installs what ferry needs from Debian's packages (only what is missing), then configures and
# builds ferry, ferry-guest and the default guest image. Safe to run again: it does only what is
# not done yet.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_BUILD_DIR:-$root/build}

packages=(
  # toolchain and libraries
  build-essential cmake pkg-config git
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libssl-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libcpp-httplib-dev
  libbrotli-dev zlib1g-dev libzstd-dev
  # the sanitizer and fuzzing tree (scripts/sanitize.sh): clang with ASan, UBSan and libFuzzer
  clang-14 libclang-rt-14-dev
  # the engine and the guest image's ingredients
  busybox-static dropbear-bin redis-server cpio gzip  # QEMU: below
  # what tests and the demo use from the outside
  redis-tools iproute2 procps coreutils
  # metrics checks: promtool and a real Prometheus (tests/service_ops_test.cc)
  prometheus
  # the .deb's checks (tests/package_test.cc): lintian, man and groff to render the man pages,
  # col, systemd-analyze for the unit
  lintian man-db groff-base bsdextrautils systemd
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  # No recommends: qemu-system-x86 would otherwise pull a whole desktop stack.
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU 9.0 or later. Under TCG, QEMU before 9.0 loses guest writes from its dirty log unless the
# guest's RAM is a little smaller than asked, and then its first dirty sync of a big guest stalls
# for seconds (a 4 GiB live snapshot fails; docs/snapshots.md). Debian 12 ships 7.2, so on
# bookworm QEMU comes from Debian's own bookworm-backports; later Debian releases ship it.
qemu_at_least_9() {
  local v
  v=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge 1:9.0~ || return 1
  v=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge 1:9.0~
}
if ! qemu_at_least_9; then
  . /etc/os-release
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  from=()
  if [[ ${VERSION_CODENAME:-} == bookworm ]]; then
    echo "setup: installing QEMU from bookworm-backports (Debian 12's QEMU 7.2 is too old)"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
      "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/ferry-bookworm-backports.sources >/dev/null
    from=(-t bookworm-backports)
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${from[@]}" \
    qemu-system-x86 qemu-utils >/dev/null
  qemu_at_least_9 || { echo "setup: QEMU 9.0 or later is needed; $(qemu-system-x86_64 --version | head -1)" >&2; exit 1; }
fi

# Debian's redis-server package starts a host redis on 6379; ferry does not need it, and its
# tests pick their own ports, so it is left as the package set it up.

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"

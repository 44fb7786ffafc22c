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
  qemu-system-x86 qemu-utils busybox-static dropbear-bin redis-server cpio gzip
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

# Debian's redis-server package starts a host redis on 6379; ferry does not need it, and its
# tests pick their own ports, so it is left as the package set it up.

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"

#!/usr/bin/env bash
# README command 2: installs, builds and runs every test (unit, then integration against real
# QEMU). .ci/run calls exactly this.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_BUILD_DIR:-$root/build}

"$root/scripts/setup.sh"

cd "$build"
echo "== unit tests"
ctest -L unit --output-on-failure -j"$(nproc)"
echo "== integration tests (real QEMU, real redis in the guest)"
# Guests run under TCG here: one VM-booting test per core.
ctest -L integration --output-on-failure -j"$(nproc)" --timeout 600

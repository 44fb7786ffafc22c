#!/usr/bin/env bash
# README command 2: installs, builds and runs every test (unit, then integration against real
# QEMU, then the unit tests again under ASan + UBSan and every fuzz target for a bounded time,
# scripts/sanitize.sh). .ci/run calls exactly this. FERRY_FUZZ_SECONDS sets the seconds per
# fuzz target (default 5 here: a brief run of each on every change; scripts/fuzz.sh alone
# defaults to 30).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_BUILD_DIR:-$root/build}

"$root/scripts/setup.sh"

cd "$build"
echo "== unit tests"
ctest -L unit --output-on-failure -j"$(nproc)"
echo "== the .deb (cpack, lintian, installed into a scratch root)"
ctest -L package --output-on-failure
echo "== integration tests (real QEMU, real redis in the guest)"
# Guests run under TCG here: one VM-booting test per core.
ctest -L integration --output-on-failure -j"$(nproc)" --timeout 600

echo "== sanitizers and fuzzing"
export FERRY_FUZZ_SECONDS=${FERRY_FUZZ_SECONDS:-5}
"$root/scripts/sanitize.sh"

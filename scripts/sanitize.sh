#!/usr/bin/env bash
# The sanitizer run of scripts/test.sh: builds a second tree (build-asan/) with clang-14 under
# AddressSanitizer and UndefinedBehaviorSanitizer, with the libFuzzer targets of fuzz/ (the
# guest image, integration tests and benchmark are left out: -DFERRY_SANITIZE=ON), runs the unit
# tests in it, then every fuzz target for FERRY_FUZZ_SECONDS (30) seconds (scripts/fuzz.sh).
# Expects the packages scripts/setup.sh installs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_ASAN_BUILD_DIR:-$root/build-asan}
export FERRY_ASAN_BUILD_DIR=$build

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DFERRY_SANITIZE=ON -DFERRY_FUZZ=ON "${launcher[@]}" >/dev/null
echo "== sanitizer build (clang-14, ASan + UBSan, fuzz targets)"
cmake --build "$build" -j"$(nproc)"

echo "== unit tests under ASan + UBSan"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
(cd "$build" && ctest -L unit --output-on-failure -j"$(nproc)")

echo "== fuzzing (${FERRY_FUZZ_SECONDS:-30} s per target)"
"$root/scripts/fuzz.sh"

#!/usr/bin/env bash
# Runs every libFuzzer target of the sanitizer tree (fuzz/, built by scripts/sanitize.sh) for a
# bounded time each, on a scratch copy of its seed corpus (fuzz/corpus/TARGET/), so the
# repository's corpus never changes. Targets run side by side, one per core. A crash, leak,
# sanitizer report or hang fails the script, and it prints the reproducer's path and the
# command that replays it.
#
#   scripts/fuzz.sh [TARGET...]          all targets when none is named
#   FERRY_FUZZ_SECONDS=30                seconds per target (default 30)
#   FERRY_FUZZ_JOBS=N                    targets at once (default: cores)
#   FERRY_ASAN_BUILD_DIR=DIR             the sanitizer tree (default build-asan/)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FERRY_ASAN_BUILD_DIR:-$root/build-asan}
seconds=${FERRY_FUZZ_SECONDS:-30}
jobs=${FERRY_FUZZ_JOBS:-$(nproc)}

targets=("$@")
if ((${#targets[@]} == 0)); then
  for dir in "$root"/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi
for t in "${targets[@]}"; do
  if [[ ! -x $build/fuzz/$t ]]; then
    echo "fuzz: no target $build/fuzz/$t; build the sanitizer tree first (scripts/sanitize.sh)" >&2
    exit 1
  fi
done

scratch=$(mktemp -d /tmp/ferry-fuzz.XXXXXX)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

run_one() {
  local t=$1 dir=$scratch/$1 status
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -r "$root/fuzz/corpus/$t/." "$dir/corpus/"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a blow-up is a failure too.
  "$build/fuzz/$t" "$dir/corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" >"$dir/log" 2>&1 && status=0 ||
    status=$?
  echo "$status" >"$dir/status"
}

echo "fuzz: ${#targets[@]} targets, ${seconds} s each, $jobs at a time (scratch: $scratch)"
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  run_one "$t" &
done
wait

failed=0
for t in "${targets[@]}"; do
  status=$(cat "$scratch/$t/status" 2>/dev/null || echo 1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t/log" | tail -1)
  if ((status == 0)); then
    printf 'fuzz: %-18s ok, %s executions\n' "$t" "${runs:-?}"
    continue
  fi
  failed=1
  printf 'fuzz: %-18s FAILED (exit %d) after %s executions; its log:\n' "$t" "$status" "${runs:-?}"
  tail -n 60 "$scratch/$t/log" | sed 's/^/    /'
  for crash in "$scratch/$t/artifacts"/*; do
    [[ -e $crash ]] || continue
    echo "    reproducer: $crash"
    echo "    replay:     $build/fuzz/$t $crash"
  done
done
if ((failed)); then
  echo "fuzz: failures above; the scratch directory $scratch keeps the reproducers" >&2
  exit 1
fi
rm -rf "$scratch"

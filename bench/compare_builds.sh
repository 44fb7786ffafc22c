#!/usr/bin/env bash
# Runs one ferry-bench entry with two build trees in alternation (old, new, new, old, ...) and
# prints, for every figure, the median of each build's samples and their ratio. This is how a
# change is checked against the commit before it in one run: both builds see the same host,
# the same load and the same moments of noise.
#
#   bench/compare_builds.sh OLD_BUILD NEW_BUILD ROUNDS ENTRY [ferry-bench flags...]
#   bench/compare_builds.sh /tmp/old/build build 2 clone_boot --runs 3
#   bench/compare_builds.sh /tmp/old/build build 2 migration --cases 256i --runs 3
#
# Each build runs its own ferry-bench (its bare-QEMU side is built from its own launch code).
# Needs jq. The raw JSON of every round stays in the scratch directory printed at the end.
set -euo pipefail

if (($# < 4)); then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
rounds=$3
entry=$4
shift 4
command -v jq >/dev/null || { echo "compare_builds: needs jq (apt-get install jq)" >&2; exit 1; }
for b in "$old" "$new"; do
  [[ -x $b/bench/ferry-bench ]] || { echo "compare_builds: no $b/bench/ferry-bench; build it first" >&2; exit 1; }
done

scratch=$(mktemp -d /tmp/ferry-compare-XXXXXX)
for ((r = 1; r <= rounds; r++)); do
  # Alternate which build goes first, so neither always gets the quieter slot.
  if ((r % 2)); then order=(old new); else order=(new old); fi
  for side in "${order[@]}"; do
    if [[ $side == old ]]; then b=$old; else b=$new; fi
    "$b/bench/ferry-bench" --only "$entry" --build-dir "$b" --json "$@" \
      >"$scratch/$side-$r.json" 2>"$scratch/$side-$r.log" ||
      { echo "compare_builds: $side round $r failed; see $scratch/$side-$r.log" >&2; exit 1; }
    echo "round $r: $side done" >&2
  done
done

# Every figure's samples, ferry side and comparison side, pooled over the rounds, per build.
jq -n -r --slurpfile o <(jq -s '.' "$scratch"/old-*.json) --slurpfile n <(jq -s '.' "$scratch"/new-*.json) '
  def samples($docs; $name; $side):
    [$docs[0][] | .entries[].figures[] | select(.name == $name) | .[$side]
     | select(. != null) | (.samples_ms // .samples // [])[]];
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def fmt: if . == null then "-" else (. * 100 | round / 100 | tostring) end;
  [$n[0][] | .entries[].figures[] | .name] | unique as $names
  | ["figure", "side", "old median", "new median", "new/old", "samples old/new"],
    ($names[] as $name | ("ferry", "comparison") as $side
     | samples($o; $name; $side) as $a | samples($n; $name; $side) as $b
     | select(($a | length) > 0 and ($b | length) > 0)
     | ($a | median) as $ma | ($b | median) as $mb
     | [$name, $side, ($ma | fmt), ($mb | fmt),
        (if $ma == null or $ma == 0 then "-" else ($mb / $ma | fmt) end),
        "\($a | length)/\($b | length)"])
  | @tsv' | column -t -s $'\t'
echo "raw results: $scratch" >&2

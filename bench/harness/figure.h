// What a benchmark measures and what it found: one FigureSpec per table row, and the samples
// collected for it. Medians, ratios and the goal verdict are computed here, not by the reader.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ferry::bench {

// What a figure should reach. Overhead, ratio and speed-up goals compare the ferry median with the
// comparison median; absolute goals look at the ferry median alone.
struct Goal {
  enum class Kind { kNone, kMaxOverheadPercent, kMaxMillis, kMinSpeedup, kMaxRatio };
  Kind kind = Kind::kNone;
  double limit = 0;
  std::string text;  // overrides Describe()'s wording when not empty

  static Goal None() { return {}; }
  static Goal MaxOverheadPercent(double percent) {
    return {Kind::kMaxOverheadPercent, percent, ""};
  }
  static Goal MaxMillis(double ms) { return {Kind::kMaxMillis, ms, ""}; }
  // comparison median / ferry median >= factor: "ferry is at least N times faster".
  static Goal MinSpeedup(double factor) { return {Kind::kMinSpeedup, factor, ""}; }
  // ferry median / comparison median <= limit ("within 1.2x", "at most 20% of").
  static Goal MaxRatio(double limit, std::string text = "") {
    return {Kind::kMaxRatio, limit, std::move(text)};
  }
  std::string Describe() const;  // "< 5% over", "< 100 ms", ">= 50x faster", "ratio <= 1.2", "-"
};

// What a figure's samples count. Times are the default; memory figures are in MiB.
enum class Unit { kMillis, kMiB, kCount };
const char* UnitName(Unit unit);                   // "ms" / "MiB" / "" (a count or rate)
std::string FormatValue(double value, Unit unit);  // "8123 ms", "41.7 ms", "512 MiB"

// One row of the table. A run of one side returns measurements by key (see Measurements); the
// row takes its ferry samples from `ferry_key` and its comparison samples from `comparison_key`.
// The same key may feed several rows (one bare-QEMU time compared with two ferry times).
//
// An entry with a second comparison side (see EntryInfo::second_comparison_side) may give a row
// a second comparison: `second_comparison_key` feeds a third column, with its own ratio and
// `second_goal`. Rows of other entries leave both empty.
//
// A row may also compare two measurements of the ferry side (a clone from the warm pool next to
// one without it, 1 GiB next to 256 MiB): `comparison_on_ferry_side` then takes the comparison
// samples from the ferry side's runs. An `optional` row may lack its keys (a feature the ferry
// under test does not have yet): it is then shown as skipped instead of failing the entry.
struct FigureSpec {
  std::string name;            // "cold boot to ready"
  std::string ferry_key;       // measurement key on the ferry side; "" for none
  std::string comparison_key;  // measurement key on the comparison side; "" for none
  Goal goal;
  Unit unit = Unit::kMillis;
  bool comparison_on_ferry_side = false;
  bool optional = false;
  std::string second_comparison_key{};  // measurement key on the second comparison side
  Goal second_goal{};                   // ferry median against the second comparison's
};

// A row of an entry's table: `ferry_key` next to `comparison_key` ("" for none), under `goal`.
FigureSpec Figure(std::string name, std::string ferry_key, std::string comparison_key,
                  Goal goal = {}, Unit unit = Unit::kMillis);

// A row whose columns both come from the ferry side's runs (comparison_on_ferry_side, when it
// has a comparison key): e.g. the second of two sends next to the first. Sizes by default.
FigureSpec FerrySideFigure(std::string name, std::string ferry_key, std::string comparison_key,
                           Goal goal = {}, Unit unit = Unit::kMiB);

// `f` as an optional row: shown as skipped when the ferry under test gives none of its keys.
inline FigureSpec Optional(FigureSpec f) {
  f.optional = true;
  return f;
}

// Bytes as MiB, the unit of Unit::kMiB rows.
inline double BytesToMiB(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// A figure with its samples, in run order, in the figure's unit (times in milliseconds).
struct FigureResult {
  FigureSpec spec;
  std::vector<double> ferry_ms;
  std::vector<double> comparison_ms;
  std::vector<double> second_comparison_ms;

  bool has_comparison() const { return !spec.comparison_key.empty(); }
  bool has_second_comparison() const { return !spec.second_comparison_key.empty(); }
  // An optional figure that got no samples: what it measures was not available.
  bool skipped() const {
    return spec.optional && ferry_ms.empty() && comparison_ms.empty() &&
           second_comparison_ms.empty();
  }
  std::optional<double> FerryMedian() const;
  std::optional<double> ComparisonMedian() const;
  // ferry median / comparison median; empty without a comparison or samples.
  std::optional<double> Ratio() const;
  // (Ratio - 1) * 100.
  std::optional<double> OverheadPercent() const;
  // comparison median / ferry median (1 / Ratio).
  std::optional<double> Speedup() const;
  // Empty when the figure has no goal or lacks the samples to judge it.
  std::optional<bool> GoalMet() const;

  // The same against the second comparison (empty without one).
  std::optional<double> SecondComparisonMedian() const;
  std::optional<double> SecondRatio() const;
  std::optional<double> SecondOverheadPercent() const;
  std::optional<double> SecondSpeedup() const;
  std::optional<bool> SecondGoalMet() const;

  nlohmann::json ToJson() const;
};

// Middle value (mean of the two middle values for an even count); empty for no samples.
std::optional<double> Median(std::vector<double> samples);

}  // namespace ferry::bench

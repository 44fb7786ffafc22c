// What a benchmark measures and what it found: one FigureSpec per table row, and the samples
// collected for it. Medians, ratios and the goal verdict are computed here, not by the reader.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ferry::bench {

// What a figure should reach. Overhead goals compare the ferry median with the comparison median;
// absolute goals look at the ferry median alone.
struct Goal {
  enum class Kind { kNone, kMaxOverheadPercent, kMaxMillis };
  Kind kind = Kind::kNone;
  double limit = 0;

  static Goal None() { return {}; }
  static Goal MaxOverheadPercent(double percent) { return {Kind::kMaxOverheadPercent, percent}; }
  static Goal MaxMillis(double ms) { return {Kind::kMaxMillis, ms}; }
  std::string Describe() const;  // "< 5% over", "< 100 ms", "-"
};

// One row of the table. A run of one side returns measurements by key (see Measurements); the
// row takes its ferry samples from `ferry_key` and its comparison samples from `comparison_key`.
// The same key may feed several rows (one bare-QEMU time compared with two ferry times).
struct FigureSpec {
  std::string name;            // "cold boot to ready"
  std::string ferry_key;       // measurement key on the ferry side
  std::string comparison_key;  // measurement key on the comparison side; "" for none
  Goal goal;
};

// A figure with its samples, in run order. All times are milliseconds.
struct FigureResult {
  FigureSpec spec;
  std::vector<double> ferry_ms;
  std::vector<double> comparison_ms;

  bool has_comparison() const { return !spec.comparison_key.empty(); }
  std::optional<double> FerryMedian() const;
  std::optional<double> ComparisonMedian() const;
  // ferry median / comparison median; empty without a comparison or samples.
  std::optional<double> Ratio() const;
  // (Ratio - 1) * 100.
  std::optional<double> OverheadPercent() const;
  // Empty when the figure has no goal or lacks the samples to judge it.
  std::optional<bool> GoalMet() const;

  nlohmann::json ToJson() const;
};

// Middle value (mean of the two middle values for an even count); empty for no samples.
std::optional<double> Median(std::vector<double> samples);

}  // namespace ferry::bench

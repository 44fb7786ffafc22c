#include "bench/harness/figure.h"

#include <algorithm>
#include <cstdio>

namespace ferry::bench {

namespace {
std::string FormatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

nlohmann::json OptionalJson(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
}  // namespace

std::string Goal::Describe() const {
  switch (kind) {
    case Kind::kNone:
      return "-";
    case Kind::kMaxOverheadPercent:
      return "< " + FormatNumber(limit) + "% over";
    case Kind::kMaxMillis:
      return "< " + FormatNumber(limit) + " ms";
    case Kind::kMinSpeedup:
      return text.empty() ? ">= " + FormatNumber(limit) + "x faster" : text;
    case Kind::kMaxRatio:
      return text.empty() ? "ratio <= " + FormatNumber(limit) : text;
  }
  return "-";
}

const char* UnitName(Unit unit) {
  return unit == Unit::kMiB ? "MiB" : unit == Unit::kCount ? "" : "ms";
}

std::string FormatValue(double value, Unit unit) {
  char buf[64];
  if (unit == Unit::kCount) {
    std::snprintf(buf, sizeof buf, value >= 100 ? "%.0f" : "%.1f", value);
    return buf;
  }
  std::snprintf(buf, sizeof buf, value >= 100 ? "%.0f %s" : "%.1f %s", value, UnitName(unit));
  return buf;
}

std::optional<double> Median(std::vector<double> samples) {
  if (samples.empty()) return std::nullopt;
  std::sort(samples.begin(), samples.end());
  size_t mid = samples.size() / 2;
  if (samples.size() % 2 == 1) return samples[mid];
  return (samples[mid - 1] + samples[mid]) / 2;
}

namespace {
// ferry median / comparison median, and the verdict of `goal` on the two medians: shared by the
// first and the second comparison of a row.
std::optional<double> RatioOf(const std::optional<double>& f, const std::optional<double>& c) {
  if (!f || !c || *c <= 0) return std::nullopt;
  return *f / *c;
}

std::optional<double> SpeedupOf(const std::optional<double>& f, const std::optional<double>& c) {
  if (!f || !c || *f <= 0) return std::nullopt;
  return *c / *f;
}

std::optional<bool> Verdict(const Goal& goal, const std::optional<double>& f,
                            const std::optional<double>& c) {
  switch (goal.kind) {
    case Goal::Kind::kNone:
      return std::nullopt;
    case Goal::Kind::kMaxOverheadPercent: {
      auto r = RatioOf(f, c);
      if (!r) return std::nullopt;
      return (*r - 1) * 100 < goal.limit;
    }
    case Goal::Kind::kMaxMillis:
      if (!f) return std::nullopt;
      return *f < goal.limit;
    case Goal::Kind::kMinSpeedup: {
      auto s = SpeedupOf(f, c);
      if (!s) return std::nullopt;
      return *s >= goal.limit;
    }
    case Goal::Kind::kMaxRatio: {
      auto r = RatioOf(f, c);
      if (!r) return std::nullopt;
      return *r <= goal.limit;
    }
  }
  return std::nullopt;
}
}  // namespace

std::optional<double> FigureResult::FerryMedian() const { return Median(ferry_ms); }

std::optional<double> FigureResult::ComparisonMedian() const {
  if (!has_comparison()) return std::nullopt;
  return Median(comparison_ms);
}

std::optional<double> FigureResult::Ratio() const {
  return RatioOf(FerryMedian(), ComparisonMedian());
}

std::optional<double> FigureResult::OverheadPercent() const {
  auto r = Ratio();
  if (!r) return std::nullopt;
  return (*r - 1) * 100;
}

std::optional<double> FigureResult::Speedup() const {
  return SpeedupOf(FerryMedian(), ComparisonMedian());
}

std::optional<bool> FigureResult::GoalMet() const {
  return Verdict(spec.goal, FerryMedian(), ComparisonMedian());
}

std::optional<double> FigureResult::SecondComparisonMedian() const {
  if (!has_second_comparison()) return std::nullopt;
  return Median(second_comparison_ms);
}

std::optional<double> FigureResult::SecondRatio() const {
  return RatioOf(FerryMedian(), SecondComparisonMedian());
}

std::optional<double> FigureResult::SecondOverheadPercent() const {
  auto r = SecondRatio();
  if (!r) return std::nullopt;
  return (*r - 1) * 100;
}

std::optional<double> FigureResult::SecondSpeedup() const {
  return SpeedupOf(FerryMedian(), SecondComparisonMedian());
}

std::optional<bool> FigureResult::SecondGoalMet() const {
  return Verdict(spec.second_goal, FerryMedian(), SecondComparisonMedian());
}

nlohmann::json FigureResult::ToJson() const {
  // Times keep their historical "_ms" keys; other units use "samples"/"median" and "unit".
  const std::string suffix = spec.unit == Unit::kMillis ? "_ms" : "";
  auto side = [&](const std::string& key, const std::vector<double>& samples,
                  const std::optional<double>& median) {
    return nlohmann::json{
        {"key", key}, {"samples" + suffix, samples}, {"median" + suffix, OptionalJson(median)}};
  };
  nlohmann::json j = {
      {"name", spec.name},
      {"unit", UnitName(spec.unit)},
      {"ferry", side(spec.ferry_key, ferry_ms, FerryMedian())},
      {"goal", {{"text", spec.goal.Describe()}}},
  };
  if (spec.optional) j["skipped"] = skipped();
  if (has_comparison()) {
    j["comparison"] = side(spec.comparison_key, comparison_ms, ComparisonMedian());
    j["comparison"]["from_ferry_side"] = spec.comparison_on_ferry_side;
    j["ratio"] = OptionalJson(Ratio());
    j["overhead_percent"] = OptionalJson(OverheadPercent());
    j["speedup"] = OptionalJson(Speedup());
  }
  auto met = GoalMet();
  j["goal"]["met"] = met ? nlohmann::json(*met) : nlohmann::json(nullptr);
  if (has_second_comparison()) {
    j["second_comparison"] =
        side(spec.second_comparison_key, second_comparison_ms, SecondComparisonMedian());
    j["second_ratio"] = OptionalJson(SecondRatio());
    j["second_overhead_percent"] = OptionalJson(SecondOverheadPercent());
    j["second_speedup"] = OptionalJson(SecondSpeedup());
    auto met2 = SecondGoalMet();
    j["second_goal"] = {{"text", spec.second_goal.Describe()},
                        {"met", met2 ? nlohmann::json(*met2) : nlohmann::json(nullptr)}};
  }
  return j;
}

FigureSpec Figure(std::string name, std::string ferry_key, std::string comparison_key, Goal goal,
                  Unit unit) {
  FigureSpec f;
  f.name = std::move(name);
  f.ferry_key = std::move(ferry_key);
  f.comparison_key = std::move(comparison_key);
  f.goal = std::move(goal);
  f.unit = unit;
  return f;
}

FigureSpec FerrySideFigure(std::string name, std::string ferry_key, std::string comparison_key,
                           Goal goal, Unit unit) {
  FigureSpec f = Figure(std::move(name), std::move(ferry_key), std::move(comparison_key),
                        std::move(goal), unit);
  f.comparison_on_ferry_side = !f.comparison_key.empty();
  return f;
}

}  // namespace ferry::bench

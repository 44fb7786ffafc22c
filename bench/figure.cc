#include "bench/figure.h"

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

const char* UnitName(Unit unit) { return unit == Unit::kMiB ? "MiB" : "ms"; }

std::string FormatValue(double value, Unit unit) {
  char buf[64];
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

std::optional<double> FigureResult::FerryMedian() const { return Median(ferry_ms); }

std::optional<double> FigureResult::ComparisonMedian() const {
  if (!has_comparison()) return std::nullopt;
  return Median(comparison_ms);
}

std::optional<double> FigureResult::Ratio() const {
  auto f = FerryMedian();
  auto c = ComparisonMedian();
  if (!f || !c || *c <= 0) return std::nullopt;
  return *f / *c;
}

std::optional<double> FigureResult::OverheadPercent() const {
  auto r = Ratio();
  if (!r) return std::nullopt;
  return (*r - 1) * 100;
}

std::optional<double> FigureResult::Speedup() const {
  auto f = FerryMedian();
  auto c = ComparisonMedian();
  if (!f || !c || *f <= 0) return std::nullopt;
  return *c / *f;
}

std::optional<bool> FigureResult::GoalMet() const {
  switch (spec.goal.kind) {
    case Goal::Kind::kNone:
      return std::nullopt;
    case Goal::Kind::kMaxOverheadPercent: {
      auto o = OverheadPercent();
      if (!o) return std::nullopt;
      return *o < spec.goal.limit;
    }
    case Goal::Kind::kMaxMillis: {
      auto f = FerryMedian();
      if (!f) return std::nullopt;
      return *f < spec.goal.limit;
    }
    case Goal::Kind::kMinSpeedup: {
      auto s = Speedup();
      if (!s) return std::nullopt;
      return *s >= spec.goal.limit;
    }
    case Goal::Kind::kMaxRatio: {
      auto r = Ratio();
      if (!r) return std::nullopt;
      return *r <= spec.goal.limit;
    }
  }
  return std::nullopt;
}

nlohmann::json FigureResult::ToJson() const {
  // Times keep their historical "_ms" keys; other units use "samples"/"median" and "unit".
  const std::string suffix = spec.unit == Unit::kMillis ? "_ms" : "";
  auto side = [&](const std::string& key, const std::vector<double>& samples,
                  const std::optional<double>& median) {
    return nlohmann::json{{"key", key}, {"samples" + suffix, samples},
                          {"median" + suffix, OptionalJson(median)}};
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
  return j;
}

}  // namespace ferry::bench

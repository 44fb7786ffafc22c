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
  }
  return "-";
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
  }
  return std::nullopt;
}

nlohmann::json FigureResult::ToJson() const {
  nlohmann::json j = {
      {"name", spec.name},
      {"ferry",
       {{"key", spec.ferry_key},
        {"samples_ms", ferry_ms},
        {"median_ms", OptionalJson(FerryMedian())}}},
      {"goal", {{"text", spec.goal.Describe()}}},
  };
  if (has_comparison()) {
    j["comparison"] = {{"key", spec.comparison_key},
                       {"samples_ms", comparison_ms},
                       {"median_ms", OptionalJson(ComparisonMedian())}};
    j["ratio"] = OptionalJson(Ratio());
    j["overhead_percent"] = OptionalJson(OverheadPercent());
  }
  auto met = GoalMet();
  j["goal"]["met"] = met ? nlohmann::json(*met) : nlohmann::json(nullptr);
  return j;
}

}  // namespace ferry::bench

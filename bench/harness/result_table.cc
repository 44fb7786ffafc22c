#include "bench/harness/result_table.h"

#include <algorithm>
#include <cstdio>

namespace ferry::bench {

namespace {

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string ValueOrDash(const std::optional<double>& v, Unit unit) {
  return v ? FormatValue(*v, unit) : "-";
}

// Near 1 a ratio reads best as an overhead; far below it, as a factor ("83.3x less").
std::string RatioCell(const std::optional<double>& r, const std::optional<double>& speedup) {
  if (!r) return "-";
  if (*r < 0.5 && speedup) {
    return Format(*r < 0.01 ? "%.4f" : "%.3f", *r) + " (" + Format("%.1fx less", *speedup) + ")";
  }
  return Format("%.3f", *r) + " (" + Format("%+.1f%%", (*r - 1) * 100) + ")";
}

std::string RatioCell(const FigureResult& f) { return RatioCell(f.Ratio(), f.Speedup()); }

std::string Verdict(const Goal& goal, const std::optional<bool>& met) {
  return goal.Describe() + ": " + (!met ? "no data" : *met ? "met" : "MISSED");
}

std::string GoalCell(const FigureResult& f) {
  const bool first = f.spec.goal.kind != Goal::Kind::kNone;
  const bool second = f.has_second_comparison() && f.spec.second_goal.kind != Goal::Kind::kNone;
  if (f.skipped()) {
    return (first ? f.spec.goal.Describe() + ": " : "") + "skipped (see notes)";
  }
  if (!first && !second) return "-";
  std::string out = first ? Verdict(f.spec.goal, f.GoalMet()) : "";
  if (second) {
    out += (out.empty() ? "" : "; ") + Verdict(f.spec.second_goal, f.SecondGoalMet());
  }
  return out;
}

// Left-aligned text columns, numbers right-aligned, separated by " | ".
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out, const std::vector<bool>& right_aligned) const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    for (size_t r = 0; r < rows_.size(); ++r) {
      std::string line;
      for (size_t i = 0; i < rows_[r].size(); ++i) {
        const std::string& cell = rows_[r][i];
        std::string pad(width[i] - cell.size(), ' ');
        if (i > 0) line += " | ";
        line += (r > 0 && right_aligned[i]) ? pad + cell : cell + pad;
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << line << "\n";
      if (r == 0) {
        std::string rule;
        for (size_t i = 0; i < width.size(); ++i) {
          if (i > 0) rule += "-|-";
          rule += std::string(width[i], '-');
        }
        out << rule << "\n";
      }
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string SampleList(const std::vector<double>& samples, Unit unit) {
  std::string out;
  for (double s : samples) out += (out.empty() ? "" : "  ") + FormatValue(s, unit);
  return out.empty() ? "-" : out;
}

// An entry with two comparison sides: both medians, a ratio against each, one goal cell.
void PrintThreeSideTable(const EntryResult& result, std::ostream& out) {
  const EntryInfo& info = result.info;
  out << info.name << ": " << info.title << "\n";
  out << "  " << info.ferry_label << ": " << info.ferry_side << "\n";
  out << "  " << info.comparison_label << ": " << info.comparison_side << "\n";
  out << "  " << info.second_comparison_label << ": " << info.second_comparison_side << "\n\n";

  TextTable table(
      {"figure", info.ferry_label, info.comparison_label, info.second_comparison_label,
       "ferry/" + (info.comparison_short_label.empty() ? info.comparison_label
                                                       : info.comparison_short_label),
       "ferry/" + (info.second_comparison_short_label.empty() ? info.second_comparison_label
                                                              : info.second_comparison_short_label),
       "goal", "runs"});
  for (const FigureResult& f : result.figures) {
    const Unit unit = f.spec.unit;
    std::string runs = std::to_string(f.ferry_ms.size()) + "+" +
                       std::to_string(f.comparison_ms.size()) + "+" +
                       std::to_string(f.second_comparison_ms.size());
    table.AddRow({f.spec.name, ValueOrDash(f.FerryMedian(), unit),
                  f.has_comparison() ? ValueOrDash(f.ComparisonMedian(), unit) : "-",
                  f.has_second_comparison() ? ValueOrDash(f.SecondComparisonMedian(), unit) : "-",
                  RatioCell(f), RatioCell(f.SecondRatio(), f.SecondSpeedup()), GoalCell(f), runs});
  }
  table.Print(out, {false, true, true, true, true, true, false, true});

  out << "\nsamples in run order (the sides alternate: " << info.ferry_label << ", "
      << info.comparison_label << ", " << info.second_comparison_label << ", ...):\n";
  size_t width = std::max(
      {info.ferry_label.size(), info.comparison_label.size(), info.second_comparison_label.size()});
  auto line = [&](const std::string& label, const std::vector<double>& samples, Unit unit) {
    out << "    " << label << std::string(width + 2 - label.size(), ' ')
        << SampleList(samples, unit) << "\n";
  };
  for (const FigureResult& f : result.figures) {
    out << "  " << f.spec.name << (f.skipped() ? "  (skipped)" : "") << "\n";
    if (!f.spec.ferry_key.empty()) line(info.ferry_label, f.ferry_ms, f.spec.unit);
    if (f.has_comparison()) line(info.comparison_label, f.comparison_ms, f.spec.unit);
    if (f.has_second_comparison()) {
      line(info.second_comparison_label, f.second_comparison_ms, f.spec.unit);
    }
  }
  if (!result.notes.empty()) {
    out << "\nnotes:\n";
    for (const std::string& note : result.notes) out << "  " << note << "\n";
  }
}

}  // namespace

std::string FormatMillis(double ms) { return FormatValue(ms, Unit::kMillis); }

void PrintResultTable(const EntryResult& result, std::ostream& out) {
  const EntryInfo& info = result.info;
  if (!info.second_comparison_side.empty()) {
    PrintThreeSideTable(result, out);
    return;
  }
  out << info.name << ": " << info.title << "\n";
  out << "  ferry:      " << info.ferry_side << "\n";
  if (!info.comparison_side.empty()) out << "  comparison: " << info.comparison_side << "\n";
  out << "\n";

  TextTable table({"figure", "ferry (median)", "comparison (median)", "ratio", "goal", "runs"});
  for (const FigureResult& f : result.figures) {
    std::string runs = std::to_string(f.ferry_ms.size());
    if (f.has_comparison()) runs += "+" + std::to_string(f.comparison_ms.size());
    table.AddRow({f.spec.name, ValueOrDash(f.FerryMedian(), f.spec.unit),
                  f.has_comparison() ? ValueOrDash(f.ComparisonMedian(), f.spec.unit) : "-",
                  RatioCell(f), GoalCell(f), runs});
  }
  table.Print(out, {false, true, true, true, false, true});

  if (info.comparison_side.empty()) {
    out << "\nsamples in run order (ferry side only; a row's two columns come from the same "
           "runs):\n";
  } else {
    out << "\nsamples in run order (the sides alternate: ferry, comparison, ferry, ...):\n";
  }
  for (const FigureResult& f : result.figures) {
    const size_t text = f.spec.name.find_first_not_of(' ');
    out << "  " << f.spec.name.substr(text == std::string::npos ? 0 : text)
        << (f.skipped() ? "  (skipped)" : "") << "\n";
    if (!f.spec.ferry_key.empty()) {
      out << "    ferry       " << SampleList(f.ferry_ms, f.spec.unit) << "\n";
    }
    if (f.has_comparison()) {
      out << "    comparison  " << SampleList(f.comparison_ms, f.spec.unit)
          << (f.spec.comparison_on_ferry_side ? "  (from the ferry side's runs)" : "") << "\n";
    }
  }
  if (!result.notes.empty()) {
    out << "\nnotes:\n";
    for (const std::string& note : result.notes) out << "  " << note << "\n";
  }
}

}  // namespace ferry::bench

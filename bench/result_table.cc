#include "bench/result_table.h"

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
std::string RatioCell(const FigureResult& f) {
  auto r = f.Ratio();
  if (!r) return "-";
  if (*r < 0.5 && f.Speedup()) {
    return Format(*r < 0.01 ? "%.4f" : "%.3f", *r) + " (" + Format("%.1fx less", *f.Speedup()) +
           ")";
  }
  return Format("%.3f", *r) + " (" + Format("%+.1f%%", *f.OverheadPercent()) + ")";
}

std::string GoalCell(const FigureResult& f) {
  if (f.skipped()) {
    return (f.spec.goal.kind == Goal::Kind::kNone ? "" : f.spec.goal.Describe() + ": ") +
           "skipped (see notes)";
  }
  if (f.spec.goal.kind == Goal::Kind::kNone) return "-";
  auto met = f.GoalMet();
  return f.spec.goal.Describe() + ": " + (!met ? "no data" : *met ? "met" : "MISSED");
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

}  // namespace

std::string FormatMillis(double ms) { return FormatValue(ms, Unit::kMillis); }

void PrintResultTable(const EntryResult& result, std::ostream& out) {
  const EntryInfo& info = result.info;
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
    out << "\nsamples in run order (ferry side only; a row's two columns come from the same runs):\n";
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

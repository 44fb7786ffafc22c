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

std::string MillisOrDash(const std::optional<double>& ms) { return ms ? FormatMillis(*ms) : "-"; }

std::string RatioCell(const FigureResult& f) {
  auto r = f.Ratio();
  if (!r) return "-";
  return Format("%.3f", *r) + " (" + Format("%+.1f%%", *f.OverheadPercent()) + ")";
}

std::string GoalCell(const FigureResult& f) {
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

std::string SampleList(const std::vector<double>& samples) {
  std::string out;
  for (double s : samples) out += (out.empty() ? "" : "  ") + FormatMillis(s);
  return out.empty() ? "-" : out;
}

}  // namespace

std::string FormatMillis(double ms) { return Format(ms >= 100 ? "%.0f ms" : "%.1f ms", ms); }

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
    table.AddRow({f.spec.name, MillisOrDash(f.FerryMedian()),
                  f.has_comparison() ? MillisOrDash(f.ComparisonMedian()) : "-", RatioCell(f),
                  GoalCell(f), runs});
  }
  table.Print(out, {false, true, true, true, false, true});

  out << "\nsamples in run order (the sides alternate: ferry, comparison, ferry, ...):\n";
  for (const FigureResult& f : result.figures) {
    out << "  " << f.spec.name << "\n";
    out << "    ferry       " << SampleList(f.ferry_ms) << "\n";
    if (f.has_comparison()) out << "    comparison  " << SampleList(f.comparison_ms) << "\n";
  }
  if (!result.notes.empty()) {
    out << "\nnotes:\n";
    for (const std::string& note : result.notes) out << "  " << note << "\n";
  }
}

}  // namespace ferry::bench

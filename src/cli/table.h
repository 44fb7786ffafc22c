// Human output: aligned tables and short durations.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ferry::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// 850 -> "850ms", 12300 -> "12.3s", 185000 -> "3m05s", 7500000 -> "2h05m".
std::string FormatDuration(int64_t ms);

}  // namespace ferry::cli

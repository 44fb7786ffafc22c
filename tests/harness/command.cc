#include "harness/command.h"

#include <algorithm>
#include <regex>

namespace ferry::testing {

std::string ErrorText(const CommandResult& r) {
  static const std::regex kProgress(R"(.* \([0-9]{1,3}%\))");
  std::string text;
  size_t start = 0;
  while (start < r.err.size()) {
    size_t end = r.err.find('\n', start);
    if (end == std::string::npos) end = r.err.size();
    if (!std::regex_match(r.err.begin() + start, r.err.begin() + end, kProgress)) {
      text.append(r.err, start, end - start).append("\n");
    }
    start = end + 1;
  }
  return text;
}

int ErrorLines(const CommandResult& r) {
  const std::string text = ErrorText(r);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace ferry::testing

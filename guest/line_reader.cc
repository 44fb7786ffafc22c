#include "guest/line_reader.h"

namespace ferry::guest {

std::vector<LineReader::Line> LineReader::Feed(std::string_view bytes) {
  std::vector<Line> lines;
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::string_view chunk = bytes.substr(0, nl);
    if (!discarding_) {
      if (partial_.size() + chunk.size() > max_line_bytes_) {
        // Report at once rather than at the "\n", which may never come.
        partial_.clear();
        discarding_ = true;
        lines.push_back(Line{"", true});
      } else {
        partial_.append(chunk);
      }
    }
    if (nl == std::string_view::npos) break;
    if (!discarding_) {
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      lines.push_back(Line{std::move(partial_), false});
    }
    partial_.clear();
    discarding_ = false;
    bytes.remove_prefix(nl + 1);
  }
  return lines;
}

void LineReader::Reset() {
  partial_.clear();
  discarding_ = false;
}

}  // namespace ferry::guest

#include "core/json_lines.h"

#include "core/untrusted_json.h"

namespace ferry {

JsonLineFramer::JsonLineFramer(size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

bool JsonLineFramer::PendingTooLong() const {
  // One byte of slack for a "\r" whose "\n" has not arrived yet.
  if (pending_.size() > max_line_bytes_ + 1) return true;
  return pending_.size() == max_line_bytes_ + 1 && pending_.back() != '\r';
}

Status JsonLineFramer::TooLong() const {
  return Status::Corruption("line longer than " + std::to_string(max_line_bytes_) +
                            " bytes; dropped it up to its newline");
}

std::vector<Result<std::string>> JsonLineFramer::Feed(std::string_view bytes) {
  std::vector<Result<std::string>> lines;
  while (!bytes.empty()) {
    size_t newline = bytes.find('\n');
    if (discarding_) {
      if (newline == std::string_view::npos) break;
      discarding_ = false;
      bytes.remove_prefix(newline + 1);
      continue;
    }
    if (newline == std::string_view::npos) {
      // Check before appending so a huge chunk is never copied in whole.
      if (pending_.size() + bytes.size() > max_line_bytes_ + 1) {
        lines.push_back(TooLong());
        pending_.clear();
        discarding_ = true;
        break;
      }
      pending_.append(bytes);
      if (PendingTooLong()) {
        lines.push_back(TooLong());
        pending_.clear();
        discarding_ = true;
      }
      break;
    }
    std::string_view rest_of_line = bytes.substr(0, newline);
    bytes.remove_prefix(newline + 1);
    size_t length = pending_.size() + rest_of_line.size();
    bool ends_in_cr = !rest_of_line.empty() ? rest_of_line.back() == '\r'
                                            : (!pending_.empty() && pending_.back() == '\r');
    if (ends_in_cr) --length;
    if (length > max_line_bytes_) {
      lines.push_back(TooLong());
      pending_.clear();
      continue;
    }
    pending_.append(rest_of_line);
    if (ends_in_cr) pending_.pop_back();
    if (!pending_.empty()) lines.push_back(std::move(pending_));
    pending_.clear();
  }
  return lines;
}

Result<nlohmann::json> ParseJsonLine(std::string_view line) {
  // The framer already bounds a line's length; the depth bound is what this adds.
  return ParseUntrustedJson(line, "", JsonLimits{line.size(), JsonLimits::kDefaultMaxDepth});
}

std::string EncodeJsonLine(const nlohmann::json& value) {
  std::string line = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

}  // namespace ferry

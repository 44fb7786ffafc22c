#include "core/json_lines.h"

#include <cstdio>

namespace ferry {

namespace {

constexpr size_t kExcerptBytes = 60;

// Text for an error message, cut at `max_bytes`: printable ASCII as is, other bytes as \xNN, so
// a peer's garbage cannot mess up a log line or a terminal.
std::string Printable(std::string_view line, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < line.size() && i < max_bytes; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (line.size() > max_bytes) out += "...";
  return out;
}

}  // namespace

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
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann's message looks like "[json.exception.parse_error.101] parse error at line 1, ...":
    // keep the part after the bracketed id. It quotes the bytes it choked on, so escape it too.
    std::string_view reason = e.what();
    size_t bracket = reason.find("] ");
    if (bracket != std::string_view::npos) reason.remove_prefix(bracket + 2);
    return Status::Corruption("not valid JSON (" + Printable(reason, 300) + ") in a line of " +
                              std::to_string(line.size()) + " bytes starting '" +
                              Printable(line, kExcerptBytes) + "'");
  }
}

std::string EncodeJsonLine(const nlohmann::json& value) {
  std::string line = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

}  // namespace ferry

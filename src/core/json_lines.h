// Line-delimited JSON ("JSON lines"), the framing of both channels ferryd keeps to a VM: QMP and
// the ferry-guest virtio-serial port. One JSON value per line, lines end in "\n" (a "\r" before it
// is tolerated), empty lines are ignored.
//
// The bytes come from peers we do not trust (QEMU, and through the serial port the guest), so the
// framer bounds its memory: a line longer than the limit is reported once as an error and dropped
// up to its newline, after which framing resumes with the next line.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry {

// Cuts a byte stream into lines. Not thread-safe: one reader feeds it.
class JsonLineFramer {
 public:
  static constexpr size_t kDefaultMaxLineBytes = size_t{1} << 20;

  // `max_line_bytes` bounds a line's content (without "\r\n"); the framer never buffers more
  // than max_line_bytes + 1 bytes.
  explicit JsonLineFramer(size_t max_line_bytes = kDefaultMaxLineBytes);

  // Appends `bytes` (any split: half a line, many lines) and returns the lines completed by them,
  // in order, without their "\n" or "\r\n". A line over the limit appears as one Corruption
  // error in its place, as soon as the limit is passed; its remaining bytes are discarded.
  std::vector<Result<std::string>> Feed(std::string_view bytes);

  // Bytes of an incomplete line held until its newline arrives.
  size_t buffered_bytes() const { return pending_.size(); }
  size_t max_line_bytes() const { return max_line_bytes_; }

 private:
  bool PendingTooLong() const;
  Status TooLong() const;

  size_t max_line_bytes_;
  std::string pending_;
  bool discarding_ = false;  // inside a too-long line: drop bytes up to the next "\n"
};

// Parses one line (see ParseUntrustedJson): invalid JSON, or JSON nested deeper than
// JsonLimits::kDefaultMaxDepth, gives Corruption with the reason and the start of the line
// (non-printable bytes escaped), never an exception.
Result<nlohmann::json> ParseJsonLine(std::string_view line);

// Serializes `value` as one line ending in "\n". Strings with newlines are escaped by JSON, and
// invalid UTF-8 is replaced rather than thrown on, so the result is always exactly one line.
std::string EncodeJsonLine(const nlohmann::json& value);

}  // namespace ferry

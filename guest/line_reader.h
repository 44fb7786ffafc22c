// LineReader: splits the byte stream from the host into request lines, enforcing the protocol's
// line limit so a host (or garbage on the port) cannot make the guest buffer without bound.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::guest {

class LineReader {
 public:
  struct Line {
    std::string text;       // without the "\n" (and without a trailing "\r")
    bool overlong = false;  // the line passed the limit; text is empty and the rest is dropped
  };

  explicit LineReader(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  // Appends bytes and returns every line they complete, in order. An overlong line is reported
  // once, as soon as it passes the limit; its remaining bytes up to the next "\n" are dropped.
  std::vector<Line> Feed(std::string_view bytes);

  // Forgets any partial line: the next byte starts a new line. Used when the host reconnects,
  // since a half-sent line from the previous connection is not the start of the next one.
  void Reset();

 private:
  std::size_t max_line_bytes_;
  std::string partial_;
  bool discarding_ = false;  // inside an overlong line, dropping until "\n"
};

}  // namespace ferry::guest

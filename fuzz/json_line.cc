// Fuzzes the JSON-lines framing and parsing every line from QEMU and from ferry-guest goes through
// (core/json_lines.h). Whatever the bytes and however they are split, the framer returns lines
// within its limit and buffers no more than it promises, and a parsed line encodes back to one
// line that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/json_lines.h"

namespace {

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "json_line: broken promise: %s\n", what);
    std::abort();
  }
}

void CheckParse(const std::string& line) {
  auto parsed = ferry::ParseJsonLine(line);
  if (!parsed.ok()) return;
  std::string encoded = ferry::EncodeJsonLine(*parsed);
  Require(!encoded.empty() && encoded.find('\n') == encoded.size() - 1,
          "EncodeJsonLine gives exactly one line");
  auto again = ferry::ParseJsonLine(std::string_view(encoded).substr(0, encoded.size() - 1));
  Require(again.ok() && *again == *parsed, "an encoded line parses to the same value");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks a small line limit and the size of the pieces the bytes arrive in, so
  // the limit and the splits are exercised as often as whole lines.
  const uint8_t control = data[0];
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t limit = 1 + (control & 0x3f);
  const size_t piece = 1 + (control >> 6) * 7;

  ferry::JsonLineFramer small(limit);
  for (size_t at = 0; at < bytes.size(); at += piece) {
    for (const auto& line : small.Feed(bytes.substr(at, piece))) {
      if (!line.ok()) continue;
      Require(!line->empty() && line->size() <= limit, "a line is non-empty and within the limit");
      Require(line->find('\n') == std::string::npos, "a line holds no newline");
    }
    Require(small.buffered_bytes() <= limit + 1, "the framer buffers at most limit + 1 bytes");
  }

  ferry::JsonLineFramer whole;
  for (const auto& line : whole.Feed(bytes)) {
    if (line.ok()) CheckParse(*line);
  }
  return 0;
}

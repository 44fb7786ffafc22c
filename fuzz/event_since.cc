// Fuzzes the `since` query of GET /v1/events (core/event_log.h): any bytes give a number or a
// clear refusal, an accepted number is exactly the decimal digits it was given, and reading the
// event ring from it never reads outside the ring.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/event_log.h"

namespace {

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "event_since: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto since = ferry::ParseEventSince(text);
  if (!since.ok()) {
    Require(!since.status().message().empty(), "a refusal says why");
    return 0;
  }
  Require(std::to_string(*since) == text || (text.size() > 1 && text[0] == '0'),
          "an accepted since is the number written");
  static ferry::EventLog* log = [] {
    auto* l = new ferry::EventLog(8);
    for (int i = 0; i < 20; ++i) l->Publish("e");
    return l;
  }();
  auto batch = log->Read(*since, 100, std::chrono::milliseconds(0));
  Require(batch.lines.size() <= 8, "a read returns at most the ring");
  Require(batch.last_seq >= *since, "a read never goes back");
  return 0;
}

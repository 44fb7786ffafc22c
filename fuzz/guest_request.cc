// Fuzzes ferry-guest's side of the host channel (guest/line_reader.h, guest/actions.h): the bytes
// ferryd (or garbage on the port) sends, cut into lines with the protocol's limit, each answered
// by GuestActions against a fake system. ferry-guest is the guest's PID 1: if it dies, the guest
// kernel panics. Every line must get exactly one reply, one line of JSON.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "guest/actions.h"
#include "guest/fake_guest_system.h"
#include "guest/line_reader.h"
#include "guest/protocol.h"
#include "guest/readiness.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view line) {
  std::fprintf(stderr, "guest_request: %s: %.*s\n", what, static_cast<int>(line.size()),
               line.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::guest;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  FakeGuestSystem system;
  Readiness readiness({}, [](const ServiceSpec&) { return true; });
  GuestActions actions(system, readiness);
  LineReader reader(kMaxLineBytes);
  for (const LineReader::Line& line : reader.Feed(bytes)) {
    if (line.overlong || line.text.empty()) continue;
    ActionReply reply = actions.HandleLine(line.text);
    if (reply.line.find('\n') != std::string::npos)
      Fail("a reply of more than one line", reply.line);
    auto parsed = nlohmann::json::parse(reply.line, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object() || !parsed.contains("ok")) Fail("a reply that is not one", reply.line);
  }
  return 0;
}

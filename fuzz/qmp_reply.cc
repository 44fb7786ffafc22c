// Fuzzes what ferryd reads from QEMU's QMP socket (qemu/qmp_client.h): each line, framed and
// parsed as JsonLineConnection does, read as a command's reply and as an event's timestamp.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/json_lines.h"
#include "qemu/qmp_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ferry::JsonLineFramer framer(ferry::qemu::QmpClient::kMaxLineBytes);
  for (const auto& line : framer.Feed(bytes)) {
    if (!line.ok()) continue;
    auto message = ferry::ParseJsonLine(*line);
    if (!message.ok() || !message->is_object()) continue;
    auto reply = ferry::qemu::InterpretQmpReply("query-status", *message);
    if (reply.ok() && !message->contains("return")) {
      std::fprintf(stderr, "qmp_reply: a reply without \"return\" was taken as a result\n");
      std::abort();
    }
    if (ferry::qemu::QmpTimestampMicros(*message) < 0) {
      std::fprintf(stderr, "qmp_reply: negative event timestamp\n");
      std::abort();
    }
  }
  return 0;
}

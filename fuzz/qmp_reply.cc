// Fuzzes what ferryd reads from QEMU's QMP socket (qemu/qmp_client.h): each line, framed and
// parsed as JsonLineConnection does, read as a command's reply and as an event (its timestamp, a
// MIGRATION event's state), and a reply's "return" value read by each typed parser
// (qemu/qmp_commands.h).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/json_lines.h"
#include "qemu/launch_spec.h"
#include "qemu/qmp_client.h"
#include "qemu/qmp_commands.h"
#include "qemu/qmp_disk_mirror.h"

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
    if (reply.ok()) {
      // Errors are the expected outcome of most inputs; a throw or a crash is not.
      (void)ferry::qemu::ParseQueryStatus(*reply);
      (void)ferry::qemu::ParseQueryMigrate(*reply);
      (void)ferry::qemu::ParseVmGenerationId(*reply);
      (void)ferry::qemu::ParseQueryVersion(*reply);
      (void)ferry::qemu::ParseBlockNodeName(*reply, ferry::qemu::kDiskDeviceId);
      (void)ferry::qemu::ParseBlockNodeNames(*reply);
      (void)ferry::qemu::ParseBlockJob(*reply, "ferry-mirror");
    }
    if (auto data = message->find("data"); data != message->end()) {
      (void)ferry::qemu::ParseMigrationEvent(*data);
    }
    if (ferry::qemu::QmpTimestampMicros(*message) < 0) {
      std::fprintf(stderr, "qmp_reply: negative event timestamp\n");
      std::abort();
    }
  }
  return 0;
}

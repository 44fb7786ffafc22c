// Fuzzes what ferryd reads from ferry-guest (qemu/guest_channel.h): each line the guest sends,
// framed and parsed as JsonLineConnection does, then read as a reply to each op ferryd sends.
// Nothing a guest sends may crash, throw, or pass for a success without "ok": true.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/json_lines.h"
#include "qemu/guest_channel.h"
#include "qemu/guest_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ferry::JsonLineFramer framer(ferry::qemu::GuestChannel::kMaxLineBytes);
  for (const auto& line : framer.Feed(bytes)) {
    if (!line.ok()) continue;
    // The typed readers of qemu/guest_messages.h, each on the raw line.
    (void)ferry::qemu::ParseGuestLine(*line);
    (void)ferry::qemu::ParsePingReplyLine(*line);
    (void)ferry::qemu::ParseIdentityReplyLine(*line);
    (void)ferry::qemu::ParseIdentityChangeReplyLine(*line);
    auto message = ferry::ParseJsonLine(*line);
    if (!message.ok() || !message->is_object()) continue;
    (void)ferry::qemu::ParseAnnounceReply(*message);
    for (const char* op :
         {"ping", "identity", "reset_identity", "finish_identity", "urandom", "announce", "shutdown"}) {
      auto reply = ferry::qemu::InterpretGuestReply(op, *message);
      if (reply.ok()) {
        auto ok = message->find("ok");
        if (ok == message->end() || *ok != true) {
          std::fprintf(stderr, "guest_message: a reply without \"ok\": true was taken\n");
          std::abort();
        }
      }
    }
  }
  return 0;
}

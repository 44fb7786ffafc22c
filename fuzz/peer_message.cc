// Fuzzes a control message from a peer agent as both ends read it: the payload parsed into a JSON
// object (migrate/peer_frame.h), then into one of the typed migration messages
// (migrate/migration_messages.h, which also reads a prepare's VM spec), and the owner policy
// inside a spec. A peer holding a fleet certificate is not trusted
// beyond what the owner's policy allows, so nothing it sends may crash or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crypto/owner_policy.h"
#include "migrate/migration_messages.h"
#include "migrate/peer_frame.h"
#include "vm/vm_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  (void)ferry::migrate::ParsePeerMessage(payload);
  auto message = ferry::migrate::ParseControlPayload(payload, "fuzz link");
  if (!message.ok()) return 0;
  auto spec_it = message->find("spec");
  if (spec_it == message->end()) return 0;
  auto spec = ferry::vm::VmSpec::FromJson(*spec_it);
  if (!spec.ok()) return 0;
  (void)spec->ToJson();
  if (!spec->policy.empty()) (void)ferry::crypto::ParsePolicy(spec->policy, "fuzz peer");
  return 0;
}

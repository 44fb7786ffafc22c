#include "vm/guest_announce.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "qemu/guest_messages.h"

namespace ferry::vm {
namespace {
// The announce op sends two frames 20 ms apart; the rest is room for TCG.
constexpr std::chrono::milliseconds kAnnounceTimeout(10000);
}  // namespace

Result<std::vector<std::string>> AnnounceAddress(VmRuntime& rt, const VmSpec& spec) {
  auto reply = rt.GuestCall(guest::ops::kAnnounce, nlohmann::json::object(), kAnnounceTimeout);
  auto announced =
      reply.ok() ? qemu::ParseAnnounceReply(*reply) : Result<std::vector<std::string>>(reply.status());
  const std::string address = spec.network.ip.substr(0, spec.network.ip.find('/'));
  if (announced.ok() &&
      std::find(announced->begin(), announced->end(), address) == announced->end()) {
    announced = Status::Unavailable("the guest announced " + nlohmann::json(*announced).dump() +
                                    ", not " + address);
  }
  if (!announced.ok()) {
    return Status::Unavailable("vm " + spec.name + ": the guest did not announce its address " +
                               spec.network.ip + " (" + announced.status().message() + ")");
  }
  return announced;
}

}  // namespace ferry::vm

#include "snapshot/clone_admission.h"

#include "core/ids.h"
#include "vm/tap_address.h"

namespace ferry::snapshot {

Status CheckCloneCount(int count, size_t names) {
  if (count < 1 || count > kMaxClonesPerRequest) {
    return Status::InvalidArgument("clone count " + std::to_string(count) +
                                   " is not between 1 and " + std::to_string(kMaxClonesPerRequest));
  }
  if (names != 0 && static_cast<int>(names) != count) {
    return Status::InvalidArgument("give one --name per clone (" + std::to_string(count) +
                                   "), or none");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> CloneNamesFor(
    const std::string& source, int count, const std::vector<std::string>& given,
    const std::function<bool(const std::string&)>& exists) {
  std::vector<std::string> names = given;
  if (given.empty()) {
    for (int i = 1; static_cast<int>(names.size()) < count && i < 100000; ++i) {
      std::string n = source + "-c" + std::to_string(i);
      if (!exists(n)) names.push_back(n);
    }
  }
  for (const auto& n : names) {
    FERRY_RETURN_IF_ERROR(ValidateName("vm", n));
    if (exists(n)) return Status::AlreadyExists("vm " + n + " already exists");
  }
  return names;
}

Status TakeCloneAddress(vm::VmSpec& spec, const std::string& ip, const std::string& what) {
  if (spec.network.mode != vm::NetworkMode::kTap) {
    if (ip.empty()) return Status::Ok();
    return Status::InvalidArgument("vm " + spec.name +
                                   ": --ip is for clones of VMs on tap "
                                   "networking, and " +
                                   what + " is of one on user networking");
  }
  if (ip.empty()) {
    return Status::InvalidArgument(
        "vm " + spec.name + ": " + what + " is of a VM on tap networking (at " + spec.network.ip +
        "); a clone needs an address of its own: give --ip A.B.C.D/P (the first clone's, the "
        "next ones count up)");
  }
  FERRY_RETURN_IF_ERROR(vm::ParseIpv4Prefix(ip).status().WithContext("vm " + spec.name + ": --ip"));
  spec.network.ip = ip;
  return Status::Ok();
}

CloneQemu CloneQemuFor(bool for_pool, bool warm, bool spares_kept) {
  if (warm) return CloneQemu::kWarmPool;
  // A pool QEMU is a QEMU of its own: it waits for a clone, not for a spare.
  if (!for_pool && spares_kept) return CloneQemu::kSpareIfReady;
  return CloneQemu::kOwn;
}

}  // namespace ferry::snapshot

#include "migrate/destination_checks.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/interface_name.h"
#include "crypto/owner_policy.h"
#include "qemu/machine_type.h"

namespace ferry::migrate {
namespace {

// Whether `owner` (a full fingerprint) is one of the configured ones (full or short form).
bool OwnerAccepted(const std::vector<std::string>& accepted, const std::string& owner) {
  for (const std::string& a : accepted) {
    if (owner.compare(0, a.size(), a) == 0) return true;
  }
  return false;
}

}  // namespace

Status CheckDestinationConfig(const MigrationConfig& config) {
  for (const std::string& bridge : config.allow_bridges) {
    FERRY_RETURN_IF_ERROR(InterfaceName::Parse(bridge, "--allow-bridge").status());
  }
  for (const std::string& owner : config.accept_owners) {
    const bool hex = owner.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex || (owner.size() != kOwnerFingerprintChars &&
                 owner.size() != crypto::kShortFingerprintChars)) {
      return Status::InvalidArgument("--accept-owner " + owner.substr(0, 80) +
                                     " is not an owner key fingerprint: give the 64 or the first "
                                     "16 lower-case hex digits (ferry policy show FILE prints it)");
    }
  }
  return Status::Ok();
}

namespace {

// What a live migration and a sent hold both check: the bridge, the owner's policy, its pinned
// owner and its migration rule for this host.
Status CheckOwnerAndNetwork(const vm::VmSpec& spec, const std::string& owner,
                            const crypto::HostIdentity& self, const MigrationConfig& config) {
  const std::string here = "host " + self.host_id;
  if (spec.network.mode == vm::NetworkMode::kTap) {
    const auto& allowed = config.allow_bridges;
    if (std::find(allowed.begin(), allowed.end(), spec.network.bridge) == allowed.end()) {
      std::string list;
      for (const auto& b : allowed) list += (list.empty() ? "" : ", ") + b;
      return Status::PermissionDenied("vm " + spec.name + " wants bridge " + spec.network.bridge +
                                      ", which " + here + " does not allow (" +
                                      (list.empty() ? "no bridge is allowed" : "allowed: " + list) +
                                      "); start its ferryd with --allow-bridge " +
                                      spec.network.bridge + " if VMs may join that segment there");
    }
  }
  if (spec.policy.empty()) {
    if (!owner.empty()) {
      return Status::PermissionDenied("vm " + spec.name + " names owner " +
                                      owner.substr(0, crypto::kShortFingerprintChars) +
                                      " but carries no policy; " + here + " refuses it");
    }
    if (config.require_policy) {
      return Status::PermissionDenied("vm " + spec.name +
                                      " arrives without an owner's policy and " + here +
                                      " requires one (--require-policy); give the VM a policy "
                                      "(ferry policy sign, then ferry vm create --policy)");
    }
    return Status::Ok();
  }
  FERRY_ASSIGN_OR_RETURN(crypto::OwnerPolicy policy,
                         crypto::ParsePolicy(spec.policy, "the policy of vm " + spec.name));
  FERRY_RETURN_IF_ERROR(crypto::CheckBoundTo(policy, spec.name, spec.cloned_from));
  if (policy.owner_fingerprint != owner) {
    return Status::PermissionDenied(
        "vm " + spec.name + " was pinned to owner " +
        owner.substr(0, crypto::kShortFingerprintChars) + " but its policy is signed by owner " +
        policy.ShortOwner() + "; the policy was replaced on the way, so " + here +
        " refuses it; migrate the VM with the policy it was created with");
  }
  if (!config.accept_owners.empty() &&
      !OwnerAccepted(config.accept_owners, policy.owner_fingerprint)) {
    return Status::PermissionDenied("vm " + spec.name + " belongs to owner " + policy.ShortOwner() +
                                    ", whom " + here + " does not accept; add --accept-owner " +
                                    policy.ShortOwner() +
                                    " to its ferryd if that owner's VMs may run there");
  }
  return crypto::CheckMigrationAllowed(policy, self);
}

}  // namespace

Result<vm::VmSpec> CheckIncoming(const PrepareRequest& prepare, const crypto::HostIdentity& self,
                                 const MigrationConfig& config) {
  vm::VmSpec spec = prepare.spec;
  FERRY_RETURN_IF_ERROR(CheckOwnerAndNetwork(spec, prepare.owner, self, config));
  // Host ports on this host are this host's: the VM gets forwards for the same guest ports on
  // free ports picked here (0 = pick at creation), shown by `ferry vm show`.
  for (auto& f : spec.network.forwards) f.host_port = 0;
  return spec;
}

Status CheckIncomingMachine(const PrepareRequest& prepare, const qemu::QemuVersion& host,
                            const crypto::HostIdentity& self) {
  if (prepare.machine_type.empty()) return Status::Ok();
  Status loads = qemu::CheckMachineTypeLoads(prepare.machine_type, host);
  if (loads.ok()) return loads;
  return Status::FailedPrecondition("vm " + prepare.spec.name + " cannot move to host " +
                                    self.host_id + ": " + loads.message() +
                                    ". Run the same QEMU release on both hosts (ferryd --qemu)");
}

Status CheckRoomForDisk(const std::string& vm, uint64_t disk_bytes, uint64_t free_bytes,
                        const crypto::HostIdentity& self) {
  // Beside the copy: qcow2's own growth, the VM directory's logs, other VMs' writes meanwhile.
  constexpr uint64_t kMarginBytes = 256u << 20;
  if (free_bytes >= disk_bytes && free_bytes - disk_bytes >= kMarginBytes) return Status::Ok();
  return Status::ResourceExhausted(
      "host " + self.host_id + " has " + std::to_string(free_bytes >> 20) +
      " MiB free for VMs, and vm " + vm + "'s disk takes " + std::to_string(disk_bytes >> 20) +
      " MiB (and " + std::to_string(kMarginBytes >> 20) + " MiB beside it); free space on " +
      self.host_id + " or move the VM to another host");
}

Status CheckRoomForDisk(const std::string& vm, uint64_t disk_bytes, const std::string& state_dir,
                        const crypto::HostIdentity& self) {
  struct statvfs fs;
  if (::statvfs(state_dir.c_str(), &fs) != 0) {
    return Status::Internal("host " + self.host_id + ": cannot read the free space of " +
                            state_dir + ": " + std::strerror(errno));
  }
  return CheckRoomForDisk(vm, disk_bytes, static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize, self);
}

Status CheckIncomingHold(const vm::VmSpec& spec, const std::string& owner,
                         const crypto::HostIdentity& self, const MigrationConfig& config) {
  return CheckOwnerAndNetwork(spec, owner, self, config);
}

}  // namespace ferry::migrate

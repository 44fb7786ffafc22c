// What a destination accepts from a peer (docs/migration.md, "What a destination accepts"): the
// peer holds a fleet certificate, which proves who it is, not that what it sends is right. This
// host decides about its own resources (bridges, host ports, disks) and checks the owner's
// policy and pinned owner itself, before anything is started.
#pragma once

#include "core/status.h"
#include "crypto/host_identity.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_service.h"
#include "qemu/qemu_version.h"
#include "vm/vm_spec.h"

namespace ferry::migrate {

// Checks the destination settings (fingerprints are hex, bridges are interface names); the error
// names the flag.
Status CheckDestinationConfig(const MigrationConfig& config);

// The spec this host creates the incoming VM from, or why not: a bridge not in
// config.allow_bridges, no policy under config.require_policy, a policy not signed by
// prepare.owner, an owner not in config.accept_owners, a policy whose signature, binding or
// migration rule fails for `self`. Each error names the VM and says what to do. Forwards keep
// their guest ports; their host ports are 0, for this host to pick.
Result<vm::VmSpec> CheckIncoming(const PrepareRequest& prepare, const crypto::HostIdentity& self,
                                 const MigrationConfig& config);

// The VM's machine type (prepare.machine_type, when the source sent one) is the one this host's
// QEMU `host` runs: FailedPrecondition naming the VM, both QEMUs and what to do otherwise.
Status CheckIncomingMachine(const PrepareRequest& prepare, const qemu::QemuVersion& host,
                            const crypto::HostIdentity& self);

// Room for an incoming disk: the filesystem of `state_dir` (where VM directories and their disks
// live) must have `disk_bytes` free and a margin beside them. ResourceExhausted naming the VM,
// the host and both sizes otherwise: checked before anything is sent.
Status CheckRoomForDisk(const std::string& vm, uint64_t disk_bytes, const std::string& state_dir,
                        const crypto::HostIdentity& self);
// The same on the numbers: `free_bytes` available.
Status CheckRoomForDisk(const std::string& vm, uint64_t disk_bytes, uint64_t free_bytes,
                        const crypto::HostIdentity& self);
// A hold sent here (`ferry hold send`): the same checks of the owner's policy, pinned owner,
// accepted owners, migration rule and bridge as CheckIncoming; a held data disk travels in the
// hold, so it is allowed. `owner`: the owner the VM was pinned to ("" for none).
Status CheckIncomingHold(const vm::VmSpec& spec, const std::string& owner,
                         const crypto::HostIdentity& self, const MigrationConfig& config);

}  // namespace ferry::migrate

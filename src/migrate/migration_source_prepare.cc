// Prepare (migration_protocol.h): the destination checks the request itself and starts a QEMU
// that waits for the stream.
#include "core/guid.h"
#include "core/mac_address.h"
#include "migrate/migration_messages.h"
#include "migrate/migration_source.h"
#include "qemu/machine_type.h"
#include "qemu/qmp_commands.h"

namespace ferry::migrate {
namespace {

// The owner the VM was pinned to when it was created, sent beside its policy so that the
// destination sees a policy swapped on the way. A record from before owners were pinned falls
// back to the key that signed the policy in force.
std::string PinnedOwner(const vm::VmRecord& rec, const std::optional<crypto::OwnerPolicy>& policy) {
  if (!rec.owner.empty()) return rec.owner;
  return policy ? policy->owner_fingerprint : "";
}

}  // namespace

Status MigrationService::MigrationSource::Prepare() {
  stage_ = Stage::kPrepare;
  const vm::VmRecord& rec = lease_->record;
  auto guid = qemu::QueryVmGenerationId(*lease_->runtime);
  op_->SetPhase("prepare on " + request_.to, 5);
  FERRY_ASSIGN_OR_RETURN(MacAddress mac,
                         MacAddress::Parse(rec.mac, "the MAC of vm " + request_.vm));
  PrepareRequest prepare{op_->id(),   rec.spec, mac, std::nullopt, PinnedOwner(rec, policy_),
                         std::nullopt};
  if (!rec.disk_path.empty()) prepare.disk_bytes = disk_bytes_;
  if (guid.ok()) {
    if (auto id = Guid::Parse(*guid); id.ok()) prepare.vmgenid = *id;
  }
  // The running QEMU's, not ferryd's --qemu: a VM ferryd re-attached to may predate a change.
  if (auto version = qemu::QueryVersion(*lease_->runtime); version.ok()) {
    prepare.machine_type = qemu::Q35MachineType(*version);
  }
  FERRY_RETURN_IF_ERROR(SendPeerMessage(*link_, prepare));
  FERRY_ASSIGN_OR_RETURN(
      PreparedReply prepared,
      ExpectPeerMessage<PreparedReply>(*link_, kPrepareTimeout, "the destination's prepared"));
  stage_ = Stage::kPrepared;
  if (prepare.disk_bytes.has_value() != prepared.disk_token.has_value()) {
    return Status::Corruption("host " + request_.to + " answered a prepare " +
                              (prepare.disk_bytes ? "with a disk without a disk token"
                                                  : "without a disk with a disk token"));
  }
  disk_token_ = std::move(prepared.disk_token);
  // Cancelled while the destination prepared: it drops its QEMU when told to abort.
  if (Cancelled()) return Status::Cancelled("the migration was cancelled");
  return Status::Ok();
}

}  // namespace ferry::migrate

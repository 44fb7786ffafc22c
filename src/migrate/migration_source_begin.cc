// Begin (migration_protocol.h): who the destination is, and whether the owner lets the VM go
// there. Refused here, not a byte of the VM has left.
#include "migrate/migration_source.h"
#include "migrate/peer_connect.h"
#include "vm/vm_disk.h"

namespace ferry::migrate {

Status MigrationService::MigrationSource::Begin() {
  stage_ = Stage::kBegin;
  const std::string& name = request_.vm;
  op_->SetPhase("begin", 2);
  const std::string address = service_.PeerAddress(request_.to);
  if (address.empty()) {
    return Status::NotFound("host " + request_.to +
                            " is not a known peer; add it with ferry peer add " + request_.to +
                            " ADDRESS:PORT");
  }
  FERRY_ASSIGN_OR_RETURN(lease_, service_.vms_.Lease(name, op_->id()));
  const vm::VmRecord& rec = lease_->record;
  if (!rec.disk_path.empty()) {
    // A chain ferry did not make is refused here, before the destination starts anything.
    auto bytes = vm::CheckedDiskChainBytes(rec.disk_path, rec.disk_chain);
    if (!bytes.ok()) return bytes.status().WithContext("vm " + name + "'s data disk");
    disk_bytes_ = *bytes;
  }
  if (!rec.spec.policy.empty()) {
    FERRY_ASSIGN_OR_RETURN(policy_,
                           crypto::ParsePolicy(rec.spec.policy, "the policy of vm " + name));
  }
  FERRY_ASSIGN_OR_RETURN(link_,
                         ConnectToPeer(address, *service_.tls_, request_.to, kConnectTimeout));
  // The destination's identity as its certificate proves it, never as it says.
  if (policy_) FERRY_RETURN_IF_ERROR(crypto::CheckMigrationAllowed(*policy_, link_->peer()));
  return Status::Ok();
}

}  // namespace ferry::migrate

// Taking a hold (HoldService::Hold), as named steps:
//
//   CheckHoldable   the owner's policy allows a hold; the VM owns its RAM file (not a clone)
//   Journal         the registry's row, step "sealing" (hold_journal.h)
//   SealWhilePaused pause; device state; RAM file, device state and data disk (its image and the
//                   frozen images below) sealed into the store, whose manifest is durable when
//                   SealHold returns
//   Commit          the row says "durable"; the VM's QEMU, RAM file and record go
//
// Until Commit the VM is what exists: any failure resumes it (if it ran) and drops the row. From
// the durable row on, the hold is what exists.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/elapsed.h"
#include "core/fault_point.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/unique_fd.h"
#include "hold/held_vm.h"
#include "hold/hold_service.h"
#include "qemu/qmp_commands.h"
#include "snapshot/device_state.h"
#include "vm/vm_policy.h"

namespace ferry::hold {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;


// The owner's rules for holding `rec`, and what ferry can hold: Ok, or PermissionDenied naming
// the owner. Sets `expires_at` from hold.max_seconds (0: no limit).
Status CheckHoldable(const vm::VmRecord& rec, const std::string& what, int64_t now,
                     int64_t& expires_at) {
  expires_at = 0;
  auto policy = vm::PolicyOf(rec.spec);
  if (!policy.ok()) return policy.status().WithContext(what);
  if (*policy) {
    FERRY_RETURN_IF_ERROR(crypto::CheckHoldAllowed(**policy, 0).WithContext(what));
    if ((*policy)->hold_max_seconds > 0) expires_at = now + (*policy)->hold_max_seconds;
  }
  if (!rec.ram_owned) {
    return Status::FailedPrecondition(
        what + ": vm " + rec.spec.name +
        " is a clone: its memory is its snapshot's file plus copy-on-write pages inside QEMU, "
        "and holding clones is not supported yet");
  }
  for (const auto& frozen : rec.disk_chain) {
    const std::string name = frozen.substr(frozen.rfind('/') + 1);
    if (!IsFrozenImageName(name)) {
      return Status::FailedPrecondition(what + ": vm " + rec.spec.name + "'s disk lies on " +
                                        frozen + ", not a frozen image of ferryd's");
    }
  }
  return Status::Ok();
}

Result<UniqueFd> OpenForReading(const std::string& path, const std::string& what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    return Status::Internal(what + ": cannot open " + path + ": " + std::strerror(errno));
  }
  return fd;
}

Result<uint64_t> SizeOf(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::Internal("cannot stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

Result<json> HoldService::TakeHold(const std::string& vm_name, Operation& op) {
  const std::string what = "hold of vm " + vm_name;
  FERRY_ASSIGN_OR_RETURN(vm::VmLease lease, vms_.Lease(vm_name, op.id()));
  HoldRow row;
  row.vm = vm_name;
  row.held_at = std::time(nullptr);
  row.hold_id = NewId();
  row.vm_was_running = lease.record.state != vm::VmState::kPaused;
  auto held = WhatToKeep(lease, row, what);
  Status st = held.status();
  if (st.ok()) st = PutRow(row).WithContext(what + ": journaling it");
  if (!st.ok()) {
    lease.release(json::object());
    return st;
  }
  auto sealed = SealWhilePaused(lease, row, *held, what, op);
  if (!sealed.ok()) return sealed.status();
  FaultPoint("hold.after_seal");

  // Durable: from here the hold is the VM.
  row.step = HoldStep::kDurable;
  if (Status journaled = PutRow(row); !journaled.ok()) {
    // The store has a durable hold the registry does not say is one: at the next start Recover
    // finds the "sealing" row and the manifest, and finishes the hold then.
    spdlog::error("{}: the hold is durable but the registry did not record it: {}", what,
                  journaled.message());
  }
  FaultPoint("hold.before_vm_removed");
  op.SetPhase("ending the VM's QEMU", 90);
  const auto removing = Clock::now();
  Status removed = vms_.Delete(vm_name, /*force=*/true, /*holder=*/op.id());
  (*sealed)["vm_removed_ms"] = MsSince(removing);
  if (!removed.ok()) {
    spdlog::error("{}: held, but the VM's copy here could not be removed: {}", what,
                  removed.message());
    lease.release(json::object());
  }
  spdlog::info("{}: sealed as hold {} ({} bytes, {} new) in {} ms", what, row.hold_id,
               (*sealed)["logical_bytes"].dump(), (*sealed)["stored_new_bytes"].dump(),
               (*sealed)["pause_to_durable_ms"].dump());
  (*sealed)["vm"] = vm_name;
  (*sealed)["hold_id"] = row.hold_id;
  (*sealed)["expires_at"] = row.expires_at;
  return sealed;
}

Result<HeldVm> HoldService::WhatToKeep(const vm::VmLease& lease, HoldRow& row,
                                     const std::string& what) {
  const vm::VmRecord& rec = lease.record;
  FERRY_RETURN_IF_ERROR(CheckHoldable(rec, what, row.held_at, row.expires_at));
  auto mac = MacAddress::Parse(rec.mac, "the MAC of vm " + rec.spec.name);
  if (!mac.ok()) return mac.status().WithContext(what);
  HeldVm held{rec.spec, *mac};
  held.owner = rec.owner;
  held.vm_id = rec.id;
  for (const auto& frozen : rec.disk_chain) {
    held.disk_chain.push_back(frozen.substr(frozen.rfind('/') + 1));
  }
  // The guest keeps its generation: it is the same machine, resumed.
  if (auto guid = qemu::QueryVmGenerationId(*lease.runtime); guid.ok()) {
    if (auto g = Guid::Parse(*guid); g.ok()) held.vmgenid = *g;
  }
  return held;
}

Result<json> HoldService::SealWhilePaused(vm::VmLease& lease, const HoldRow& row,
                                          const HeldVm& held, const std::string& what,
                                          Operation& op) {
  vm::VmRuntime& rt = *lease.runtime;
  const vm::VmRecord& rec = lease.record;
  const std::string state_file = rec.dir + "/hold-" + row.hold_id + ".state";
  op.SetPhase("pausing", 10);
  const auto paused_at = Clock::now();
  Status st = row.vm_was_running ? qemu::Stop(rt) : Status::Ok();
  int64_t device_ms = 0;
  Result<store::HoldStats> stats = Status::Internal("not sealed");
  if (st.ok()) {
    op.SetPhase("saving device state", 20);
    st = snapshot::SaveDeviceState(rt, state_file, snapshot::kDeviceStateTimeout);
    device_ms = MsSince(paused_at);
  }
  if (st.ok()) {
    FaultPoint("hold.before_seal");
    op.SetPhase("sealing RAM, device state and disk", 40);
    stats = SealBlobs(row, held, rec, state_file, what);
    st = stats.status();
  }
  ::unlink(state_file.c_str());
  if (!st.ok()) {
    // The VM is the copy: resumed (if it ran), the journal row dropped.
    vms_.registry().DeleteObject(kKind, row.vm);
    Status resumed = row.vm_was_running ? qemu::Cont(rt) : Status::Ok();
    lease.release(json::object());
    if (!resumed.ok()) {
      return st.WithContext(what + " (and the VM did not resume: " + resumed.message() + ")");
    }
    return st.WithContext(what + "; the VM runs on");
  }
  return json{{"logical_bytes", stats->logical_bytes},
              {"stored_new_bytes", stats->stored_new_bytes},
              {"chunks", stats->chunks},
              {"new_chunks", stats->new_chunks},
              {"zero_chunks", stats->zero_chunks},
              {"pause_to_durable_ms", MsSince(paused_at)},
              {"device_state_ms", device_ms},
              {"seal_chunk_ms", stats->chunk_ms},
              {"seal_sync_ms", stats->sync_ms},
              {"seal_manifest_ms", stats->manifest_ms}};
}

Result<store::HoldStats> HoldService::SealBlobs(const HoldRow& row, const HeldVm& held,
                                                const vm::VmRecord& rec,
                                                const std::string& state_file,
                                                const std::string& what) {
  // The RAM, the device state and, for a VM with a disk, the image it writes and the frozen
  // images below it. QEMU flushed the disk when it stopped the guest, so the files are whole.
  std::vector<std::string> paths = {rec.ram_path, state_file};
  std::vector<std::string> names = {kRamBlob, kDeviceStateBlob};
  if (!rec.disk_path.empty()) {
    paths.push_back(rec.disk_path);
    names.push_back(DiskBlobName(-1));
    for (size_t i = 0; i < rec.disk_chain.size(); ++i) {
      paths.push_back(rec.disk_chain[i]);
      names.push_back(DiskBlobName(static_cast<int>(i)));
    }
  }
  std::vector<UniqueFd> fds;
  std::vector<store::BlobSource> blobs;
  for (size_t i = 0; i < paths.size(); ++i) {
    FERRY_ASSIGN_OR_RETURN(UniqueFd fd, OpenForReading(paths[i], what));
    FERRY_ASSIGN_OR_RETURN(uint64_t size, SizeOf(fd.get(), paths[i]));
    blobs.push_back({names[i], fd.get(), size});
    fds.push_back(std::move(fd));
  }
  store::HoldHeader header;
  header.hold_id = row.hold_id;
  header.vm_name = row.vm;
  header.owner_fingerprint = held.owner;
  header.policy_text = held.spec.policy;
  header.spec_json = held.ToText();
  header.created_at = row.held_at;
  header.expires_at = row.expires_at;
  header.state = "durable";
  return store_.SealHold(header, blobs);
}

}  // namespace ferry::hold

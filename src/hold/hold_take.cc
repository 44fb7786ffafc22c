// Taking a hold (HoldService::Hold), as named steps:
//
//   CheckHoldable   the owner's policy allows a hold; the disk lies on ferryd's frozen images
//   Journal         the registry's row, step "sealing" (hold_journal.h)
//   SealWhilePaused pause; device state; RAM file, device state and data disk (its image and the
//                   frozen images below) sealed into the store, whose manifest is durable when
//                   SealHold returns. A clone (whose RAM is its snapshot's file mapped share=off)
//                   has no RAM file of its own: its whole state is streamed out of QEMU and split
//                   into a RAM image and a device state without it (snapshot/clone_state.h), and
//                   those are sealed; the hold is then a VM's like any other, and its restore
//                   the same (a VM of its own, no longer a clone of the snapshot)
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
#include "qemu/launch_spec.h"
#include "qemu/qmp_commands.h"
#include "snapshot/clone_state.h"
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

// A file in `dir` with no name, gone when closed (also when ferryd dies): a clone's RAM image
// and device state exist only until they are sealed. `path` names it in messages.
Result<UniqueFd> AnonymousFile(const std::string& dir, const std::string& path,
                               const std::string& what) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.valid()) return fd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return Status::Internal(what + ": cannot make " + path + ": " + std::strerror(errno));
  }
  // A filesystem without O_TMPFILE: a named file, unlinked at once.
  auto made = CreateExclusive(path, O_RDWR, 0600);
  if (!made.ok()) return made.status().WithContext(what);
  ::unlink(path.c_str());
  return UniqueFd(*made);
}

// A VM with its own RAM file: the device state saved; that file and the RAM file, opened.
Result<std::pair<UniqueFd, UniqueFd>> SaveOwnState(vm::VmRuntime& rt, const HoldRow& row,
                                                   const vm::VmRecord& rec,
                                                   const std::string& what) {
  // The RAM is the VM's own file, shared with QEMU: the stream carries only the devices.
  const std::string state_file = rec.dir + "/hold-" + row.hold_id + ".state";
  Status st = snapshot::SaveDeviceState(rt, state_file, snapshot::kDeviceStateTimeout);
  Result<UniqueFd> state = st.ok() ? OpenForReading(state_file, what) : Result<UniqueFd>(st);
  ::unlink(state_file.c_str());  // the descriptor keeps it until it is sealed
  if (!state.ok()) return state.status();
  FERRY_ASSIGN_OR_RETURN(UniqueFd ram, OpenForReading(rec.ram_path, what));
  return std::make_pair(std::move(ram), std::move(state).value());
}

// A clone: its stream split into a RAM image (`ram`, in `ram_dir`) and a device state
// (`device_state`), both unnamed files gone when closed; returns the split's figures.
Result<json> SaveClone(vm::VmRuntime& rt, const HoldRow& row, const vm::VmRecord& rec,
                       uint64_t ram_kib, const std::string& ram_dir, UniqueFd& ram,
                       UniqueFd& device_state, const std::string& what) {
  // The RAM image goes where guest RAM files go (tmpfs); the device state, a few hundred KiB,
  // where a VM's own would.
  const std::string ram_path = ram_dir + "/hold-" + row.hold_id + ".ram";
  const std::string state_path = rec.dir + "/hold-" + row.hold_id + ".state";
  FERRY_ASSIGN_OR_RETURN(ram, AnonymousFile(ram_dir, ram_path, what));
  FERRY_ASSIGN_OR_RETURN(device_state, AnonymousFile(rec.dir, state_path, what));
  // QEMU's RAM block is what the launcher gave it; the image is as large as a VM's own RAM file.
  snapshot::CloneStateFiles files;
  files.ram_fd = ram.get();
  files.ram_path = ram_path;
  files.ram_bytes = ram_kib << 10;
  files.image_bytes = rec.spec.memory_mib << 20;
  files.device_state_fd = device_state.get();
  files.device_state_path = state_path;
  const auto started = Clock::now();
  auto saved = snapshot::SaveCloneState(rt, files);
  if (!saved.ok()) return saved.status();
  spdlog::info(
      "{}: the clone's stream ({} bytes) split into {} RAM pages with data, {} zero, "
      "and {} bytes of device state",
      what, saved->stream_bytes, saved->split.data_pages, saved->split.zero_pages,
      saved->split.device_state_bytes);
  return json{{"stream_bytes", saved->stream_bytes},
              {"ram_data_pages", saved->split.data_pages},
              {"ram_zero_pages", saved->split.zero_pages},
              {"device_state_bytes", saved->split.device_state_bytes},
              {"stream_ms", MsSince(started)}};
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
  op.SetPhase("pausing", 10);
  const auto paused_at = Clock::now();
  Status st = row.vm_was_running ? qemu::Stop(rt) : Status::Ok();
  int64_t device_ms = 0;
  json clone_figures;
  Result<store::HoldStats> stats = Status::Internal("not sealed");
  UniqueFd ram, device_state;
  if (st.ok()) {
    if (rec.ram_owned) {
      op.SetPhase("saving device state", 20);
      auto saved = SaveOwnState(rt, row, rec, what);
      if (saved.ok()) {
        ram = std::move(saved->first);
        device_state = std::move(saved->second);
      }
      st = saved.status();
    } else {
      op.SetPhase("saving the clone's RAM and device state", 20);
      auto saved = SaveClone(rt, row, rec, vms_.GuestRamKib(rec), vms_.config().ram_dir, ram,
                             device_state, what);
      if (saved.ok()) clone_figures = *saved;
      st = saved.status();
    }
    device_ms = MsSince(paused_at);
  }
  if (st.ok()) {
    FaultPoint("hold.before_seal");
    op.SetPhase("sealing RAM, device state and disk", 40);
    stats = SealBlobs(row, held, rec, ram.get(), device_state.get(), what);
    st = stats.status();
  }
  ram.Reset();
  device_state.Reset();
  if (!st.ok()) {
    // The VM is the copy: resumed (if it ran), the journal row dropped.
    rows_.Delete(row.vm);
    Status resumed = row.vm_was_running ? qemu::Cont(rt) : Status::Ok();
    lease.release(json::object());
    if (!resumed.ok() && rt.Exited()) {
      return st.WithContext(what + "; its QEMU exited, so nothing is held and the VM is failed");
    }
    if (!resumed.ok()) {
      return st.WithContext(what + " (and the VM did not resume: " + resumed.message() + ")");
    }
    return st.WithContext(what + "; the VM runs on");
  }
  json figures{{"logical_bytes", stats->logical_bytes},
               {"stored_new_bytes", stats->stored_new_bytes},
               {"chunks", stats->chunks},
               {"new_chunks", stats->new_chunks},
               {"zero_chunks", stats->zero_chunks},
               {"pause_to_durable_ms", MsSince(paused_at)},
               {"device_state_ms", device_ms},
               {"seal_chunk_ms", stats->chunk_ms},
               {"seal_sync_ms", stats->sync_ms},
               {"seal_manifest_ms", stats->manifest_ms}};
  if (!clone_figures.is_null()) figures["clone"] = clone_figures;
  return figures;
}

Result<store::HoldStats> HoldService::SealBlobs(const HoldRow& row, const HeldVm& held,
                                                const vm::VmRecord& rec, int ram_fd,
                                                int device_state_fd, const std::string& what) {
  // The RAM, the device state and, for a VM with a disk, the image it writes and the frozen
  // images below it. QEMU flushed the disk when it stopped the guest, so the files are whole.
  std::vector<store::BlobSource> blobs;
  FERRY_ASSIGN_OR_RETURN(uint64_t ram_size, SizeOf(ram_fd, "the RAM of vm " + row.vm));
  blobs.push_back({kRamBlob, ram_fd, ram_size});
  FERRY_ASSIGN_OR_RETURN(uint64_t state_size,
                         SizeOf(device_state_fd, "the device state of vm " + row.vm));
  blobs.push_back({kDeviceStateBlob, device_state_fd, state_size});
  std::vector<std::string> paths;
  std::vector<std::string> names;
  if (!rec.disk_path.empty()) {
    paths.push_back(rec.disk_path);
    names.push_back(DiskBlobName(-1));
    for (size_t i = 0; i < rec.disk_chain.size(); ++i) {
      paths.push_back(rec.disk_chain[i]);
      names.push_back(DiskBlobName(static_cast<int>(i)));
    }
  }
  std::vector<UniqueFd> fds;
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

// Restoring a hold (HoldService::Restore), as named steps:
//
//   Load           the manifest, its signature checked; the VM it keeps parsed; the hold not
//                  past its expiry (an expired one is shredded now); the owner's policy bound
//   Journal        the row says "restoring"
//   Disk           a VM with a data disk: the image it writes laid out in its directory, and the
//                  frozen images below it in STATE/disks unless a snapshot still keeps them there
//   Launch         the VM registered again under its name, with its MAC, generation ID, network
//                  and forwards; QEMU waits with -incoming defer on a new own RAM file; the RAM
//                  and device state are reconstituted from the store into it and loaded; resumed;
//                  ferry-guest keeps its hostname but steps the clock and reseeds its RNG
//   Consume        the hold is shredded and its row dropped: the VM is the copy again
//
// A failure before Consume leaves the hold durable and no VM (the launcher drops a VM that never
// ran).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <vector>

#include "core/fault_point.h"
#include "core/files.h"
#include "core/unique_fd.h"
#include "hold/hold_service.h"
#include "qemu/guest_messages.h"
#include "qemu/qmp_commands.h"
#include "snapshot/clone_identity_reset.h"
#include "snapshot/device_state.h"
#include "vm/guest_announce.h"
#include "vm/vm_origin.h"
#include "vm/vm_paths.h"
#include "vm/vm_policy.h"

namespace ferry::hold {
namespace {

using nlohmann::json;

Status Reconstitute(store::Store& store, const std::string& hold_id, const std::string& blob,
                    const std::string& path, bool create) {
  UniqueFd fd;
  if (create) {
    auto made = CreateExclusive(path, O_RDWR, 0600);
    if (!made.ok()) return made.status();
    fd.Reset(*made);
  } else {
    fd.Reset(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return Status::Internal("cannot open " + path + ": " + std::strerror(errno));
  }
  return store.ReconstituteBlob(hold_id, blob, fd.get());
}

// The guest runs again: the same hostname, a stepped clock and a reseeded RNG (state that was
// copied must not be reused). The hostname is the guest's own, read back first.
Result<json> WakeGuest(vm::VmRuntime& rt, const MacAddress& mac) {
  FERRY_RETURN_IF_ERROR(rt.WaitGuestConnected(snapshot::kGuestIdentityTimeout));
  auto reply = rt.GuestCall(guest::ops::kIdentity, json::object(), snapshot::kGuestIdentityTimeout);
  if (!reply.ok()) return reply.status().WithContext("asking the guest its identity");
  FERRY_ASSIGN_OR_RETURN(qemu::GuestIdentity identity, qemu::ParseIdentityReply(*reply));
  snapshot::PrimedIdentity same;
  same.mac = mac.ToString();
  FERRY_ASSIGN_OR_RETURN(snapshot::IdentityOutcome woke,
                         snapshot::FinishIdentity(rt, same, identity.hostname));
  return json{{"clock_ms", woke.reply.total_ms}, {"hostname", woke.reply.identity.hostname}};
}

}  // namespace

Result<json> HoldService::RestoreHold(const std::string& vm_name, const RestoreOptions& options,
                                       Operation& op) {
  const std::string what = "restore of the hold of vm " + vm_name;
  FERRY_ASSIGN_OR_RETURN(HoldRow row, Row(vm_name));
  op.SetPhase("verifying the hold", 5);
  auto manifest = store_.LoadHold(row.hold_id);
  if (!manifest.ok()) return manifest.status().WithContext(what);
  FERRY_ASSIGN_OR_RETURN(HeldVm held, HeldVm::Parse(manifest->header.spec_json, what));
  if (held.spec.name != vm_name || manifest->header.vm_name != vm_name) {
    return Status::Corruption(what + ": the hold keeps vm " + held.spec.name +
                              ", not this one; the hold is damaged");
  }
  const int64_t now = std::time(nullptr);
  const int64_t expires_at = manifest->header.expires_at;
  if (expires_at != 0 && now >= expires_at) {
    if (Status shredded = ShredExpired(row); !shredded.ok()) return shredded.WithContext(what);
    return ExpiredRefusal(what, row);
  }
  // The policy kept is the one the owner signed for this VM: checked again, as on a migration.
  auto policy = vm::PolicyOf(held.spec);
  if (!policy.ok()) return policy.status().WithContext(what);
  if (*policy && (*policy)->owner_fingerprint != held.owner) {
    return Status::PermissionDenied(what + ": the hold's policy is signed by owner " +
                                    (*policy)->ShortOwner() + ", not by the owner the VM was " +
                                    "pinned to; the hold is refused");
  }

  if (options.forwards) {
    if (held.spec.network.mode == vm::NetworkMode::kTap && !options.forwards->empty()) {
      return Status::InvalidArgument(what + ": the VM is on tap networking, reached at its own " +
                                     "address " + held.spec.network.ip + "; restore it without " +
                                     "--forward");
    }
    held.spec.network.forwards = *options.forwards;
  }

  row.step = HoldStep::kRestoring;
  FERRY_RETURN_IF_ERROR(PutRow(row).WithContext(what + ": journaling it"));
  auto restored = Relaunch(row, held, options.wait_ready, op);
  if (!restored.ok()) {
    row.step = HoldStep::kDurable;
    if (Status back = PutRow(row); !back.ok()) {
      spdlog::error("{}: the registry still says restoring: {}", what, back.message());
    }
    return restored.status().WithContext(what + "; the hold is kept");
  }
  FaultPoint("hold.restore.before_consume");
  op.SetPhase("consuming the hold", 95);
  if (Status consumed = Shred(row); !consumed.ok()) {
    // The VM runs: a hold left behind would be a second copy. Recover retries at start-up.
    spdlog::error("{}: the VM runs but its hold could not be consumed: {}", what,
                  consumed.message());
  }
  spdlog::info("{}: hold {} restored; the VM runs", what, row.hold_id);
  return *restored;
}

Result<json> HoldService::Relaunch(const HoldRow& row, const HeldVm& held, bool wait_ready,
                                   Operation& op) {
  // Like an incoming migration: the guest keeps its network (tap address, forwards) and
  // generation; its memory and devices come from here instead of a peer.
  vm::HoldRestoreLaunch plan;
  plan.mac = held.mac.ToString();
  if (held.vmgenid) plan.vmgenid = held.vmgenid->ToString();
  plan.origin = vm::HoldOrigin{row.hold_id, row.held_at, ""};
  const std::string name = row.vm;
  const std::string hold_id = row.hold_id;
  plan.restore = [this, name, hold_id, mac = held.mac](vm::VmRuntime& rt,
                                                         Operation& op) -> Result<vm::RestoredGuest> {
    FERRY_ASSIGN_OR_RETURN(vm::VmRecord rec, vms_.Get(name));
    op.SetPhase("reconstituting RAM", 40);
    // QEMU maps this file shared and writes nothing to guest RAM while it waits for an incoming
    // stream, so what is written here is what the guest finds.
    FERRY_RETURN_IF_ERROR(Reconstitute(store_, hold_id, kRamBlob, rec.ram_path, false));
    const std::string state_file = rec.dir + "/hold-" + hold_id + ".state";
    ::unlink(state_file.c_str());
    Status st = Reconstitute(store_, hold_id, kDeviceStateBlob, state_file, true);
    op.SetPhase("loading device state", 70);
    // A hold taken under another QEMU release is refused here, naming both; it is kept.
    if (st.ok()) st = snapshot::CheckDeviceStateLoads(state_file, vms_.qemu_version());
    if (st.ok()) st = snapshot::LoadDeviceState(rt, state_file, snapshot::kDeviceStateTimeout);
    ::unlink(state_file.c_str());
    FERRY_RETURN_IF_ERROR(st);
    FERRY_RETURN_IF_ERROR(qemu::Cont(rt));
    op.SetPhase("waking the guest", 85);
    FERRY_ASSIGN_OR_RETURN(json woke, WakeGuest(rt, mac));
    json timings{{"wake_ms", woke["clock_ms"]}};
    if (rec.spec.network.mode == vm::NetworkMode::kTap) {
      // Its tap is new to the bridge: the segment learns the VM's port before it is reported
      // running, not at its next frame (a guest that cannot say it fails the restore; the hold
      // stays).
      op.SetPhase("announcing " + rec.spec.network.ip, 90);
      const auto t0 = std::chrono::steady_clock::now();
      FERRY_ASSIGN_OR_RETURN(std::vector<std::string> announced,
                             vm::AnnounceAddress(rt, rec.spec));
      timings["announce_ms"] = std::chrono::duration<double, std::milli>(
                                   std::chrono::steady_clock::now() - t0)
                                   .count();
      timings["announced"] = announced;
    }
    return vm::RestoredGuest{std::move(timings), mac.ToString()};
  };
  const std::string dir = vm::VmPaths::For(vms_.config().state_dir, name).dir;
  if (held.spec.disk_mib != 0) {
    op.SetPhase("reconstituting the disk", 20);
    auto chain = LayOutDisk(row, held, dir);
    if (!chain.ok()) {
      RemoveAll(dir);
      return chain.status();
    }
    plan.disk_chain = std::move(chain).value();
  }
  auto create = vms_.CreateFrom(held.spec, std::move(plan), wait_ready);
  Result<json> outcome = create.status();
  if (create.ok()) {
    (*create)->WaitDone(/*timeout_ms=*/600000);
    json result = (*create)->ToJson();
    if (result.value("state", "") == "succeeded") {
      outcome = result.value("result", json::object());
    } else {
      const json error = result.value("error", json::object());
      outcome = Status::Unavailable(error.value("message", std::string("the VM did not start")));
    }
  }
  // A disk laid out for a VM that did not come back must not be found by a later VM of the name.
  if (!outcome.ok() && !vms_.Exists(name)) RemoveAll(dir);
  return outcome;
}

Result<std::vector<std::string>> HoldService::LayOutDisk(const HoldRow& row, const HeldVm& held,
                                                         const std::string& dir) {
  // No VM of this name exists (Restore checked): what its directory holds is a leftover.
  RemoveAll(dir);
  FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  // The launcher finds the disk in place and uses it instead of making one.
  FERRY_RETURN_IF_ERROR(
      Reconstitute(store_, row.hold_id, DiskBlobName(-1), dir + "/disk.qcow2", true));
  const std::string disks = vms_.config().state_dir + "/disks";
  FERRY_RETURN_IF_ERROR(MakeDirs(disks, 0700));
  std::vector<std::string> chain;
  for (size_t i = 0; i < held.disk_chain.size(); ++i) {
    // A frozen image never changes once made: one still here (a snapshot keeps it) is the same.
    const std::string path = disks + "/" + held.disk_chain[i];
    if (::access(path.c_str(), F_OK) != 0) {
      FERRY_RETURN_IF_ERROR(Reconstitute(store_, row.hold_id,
                                         DiskBlobName(static_cast<int>(i)), path, true));
      ::chmod(path.c_str(), 0400);
    }
    chain.push_back(path);
  }
  return chain;
}

}  // namespace ferry::hold

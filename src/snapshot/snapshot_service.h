// Live snapshots of running VMs and clones made from them.
//
// A snapshot is STATE/snapshots/NAME/{manifest.json, device.state} plus its RAM image on the
// RAM directory's tmpfs (RAM_DIR/snapshots/ID.ram, mode 0400). Clones map that file
// copy-on-write (share=off): they share every page they have not written, through the page
// cache, and never write the file. A snapshot that clones still map cannot be deleted.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/operation.h"
#include "core/status.h"
#include "snapshot/clone_identity_reset.h"
#include "snapshot/snapshot_manifest.h"
#include "snapshot/snapshot_rows.h"
#include "snapshot/verified_files.h"
#include "vm/vm_service.h"

namespace ferry::snapshot {

struct CloneRequest {
  std::string snapshot;
  int count = 1;
  std::vector<std::string> names;  // empty: SOURCE-c1, SOURCE-c2, ... (first free)
  // Forwards for the first clone; each further clone's host port is one higher (0: any free).
  std::vector<vm::PortForwardSpec> forwards;
  // A snapshot of a VM on tap networking: the first clone's address ("10.77.0.21/24"), each
  // further clone's one higher (vm/tap_address.h). Required then, refused otherwise.
  std::string ip;
};

// A QEMU from a template's warm pool: preloaded with the device state, and primed when its
// identity was prepared while it waited.
struct WarmQemu {
  vm::PrelaunchedQemu qemu;
  std::optional<PrimedIdentity> primed;
};

// How a running VM's RAM is copied into a snapshot.
enum class SnapshotCopy {
  kLive,    // while the guest runs; it pauses only for the last pass (ram_precopy.h)
  kPaused,  // with the guest paused throughout the copy: the pause grows with its RAM
};

class SpareQemus;

class SnapshotService {
 public:
  // Sweeps what a ferryd that died mid-snapshot left (see SweepLeftovers).
  // Keeps its rows (and reads templates') in `registry`, which outlives it.
  SnapshotService(vm::VmService& vms, registry::Registry& registry);

  // Set once at start-up (ferryd --snapshot-copy), before any snapshot is taken.
  void SetCopyMode(SnapshotCopy mode) { copy_mode_ = mode; }
  // Set once at start-up, before any clone (null: clones start their own QEMU). Plain clones
  // take a spare QEMU from it when one of their shape is ready (spare_qemus.h).
  void SetSpareQemus(SpareQemus* spares) { spares_ = spares; }
  // The pids of the spare QEMUs waiting now; none without spares.
  std::vector<pid_t> SparePids();
  // Copies VM's RAM while it runs, pauses it briefly for the rest and its device state, resumes it.
  Result<std::shared_ptr<Operation>> Create(const std::string& vm, const std::string& name);
  Result<std::shared_ptr<Operation>> Clone(const CloneRequest& request);
  nlohmann::json List();
  Result<nlohmann::json> Show(const std::string& name);
  // Refused while clones map the snapshot's RAM.
  Status Delete(const std::string& name);
  // Ok if the owner's policy lets `snapshot` be cloned (a template or a warm pool is clones):
  // the policy the snapshot carries must verify and match the one recorded when it was taken,
  // and both it and the source VM's current policy (if the VM is still here) must allow clones.
  // PermissionDenied names the VM and its owner; `what` says what was asked.
  Status CheckClonable(const std::string& snapshot, const std::string& what);

  // One clone of `snapshot` named `name`; `warm` is a QEMU from a template's pool, or empty.
  // `ip`: its address on a tap network ("" for a clone on user networking), and `probe` the
  // duplicate address probe of its request (CheckCloneAddresses), which the clone waits for
  // before its tap joins the bridge.
  Result<std::shared_ptr<Operation>> CloneOne(const std::string& snapshot, const std::string& name,
                                              std::vector<vm::PortForwardSpec> forwards,
                                              const std::string& ip,
                                              std::shared_ptr<const vm::AddressProbe> probe,
                                              WarmQemu warm = {});
  // The specs the clones `names` of `snapshot` will have, with their addresses counted up from
  // `first_ip` on a tap network; then VmService::CheckCloneAddresses on them, so that a clone
  // whose address is outside its bridge's subnet or another VM's is refused before any starts,
  // and the duplicate address probe of them all begins.
  Result<std::shared_ptr<const vm::AddressProbe>> CheckCloneAddresses(
      const std::string& snapshot, const std::vector<std::string>& names,
      const std::string& first_ip);
  // Loads the snapshot's device state into a waiting pool QEMU (started by Prelaunch with
  // -incoming defer), so that a clone from it only has to resume. Every clone's device state is
  // the same; what makes a clone new (VMGenID on its command line, the identity reset) comes
  // after.
  Status Preload(const std::string& snapshot, vm::VmRuntime& rt);
  // What a clone of `snapshot` is: its spec (named `name`, at address `ip` on a tap network;
  // nullopt for a pool QEMU, which keeps its parent's until a clone takes it) and how to start it;
  // in `warm`'s QEMU (primed or not) when it takes one from a template's pool. The snapshot is
  // verified first: a damaged one is refused before any QEMU starts. `probe`: what the clone waits
  // for before its tap joins the bridge (null: nothing).
  Result<std::pair<vm::VmSpec, vm::LaunchPlan>> ClonePlan(
      const std::string& snapshot, const std::string& name, std::optional<std::string> ip = "",
      WarmQemu warm = {}, std::shared_ptr<const vm::AddressProbe> probe = nullptr);

 private:
  // Removes snapshot directories (finished or ".partial") and RAM images that no snapshot in
  // the registry owns and no VM maps, logging each; then finishes or removes what a snapshot of
  // a VM with a disk left (RecoverDisks, disk_recovery.h).
  void SweepLeftovers();
  struct Paths {
    std::string dir;  // manifest + device state
    std::string ram;  // RAM image on tmpfs
    // SHA-256 of the policy text the VM had when the snapshot was taken ("" for none), as the
    // registry recorded it; unset for a snapshot recorded before ferry kept it.
    std::optional<std::string> policy_sha256;
  };
  Paths PathsFor(const std::string& name, const std::string& id) const;
  Result<Paths> Find(const std::string& name);
  Status CheckClonable(const Paths& paths, const SnapshotManifest& m, const std::string& what);

  // Create's work, in the background, as the steps of snapshot_take.cc.
  Status TakeSnapshot(const std::string& vm, const std::string& name, Operation& op);
  struct Taking;       // one snapshot being taken (snapshot_take.cc)
  struct StepsOfTake;  // its steps, as RunTake runs them (snapshot_take_plan.h)
  static Status CheckSnapshotAllowed(const vm::VmSpec& spec, const std::string& what);
  Status CheckSnapshottable(const vm::VmRecord& rec, const std::string& vm_name,
                            const std::string& what);
  Status PrepareDirs(Taking& t);
  Status CaptureLive(Taking& t, Operation& op);
  Status CaptureWhilePaused(Taking& t, Operation& op);
  Status Capture(Taking& t, Operation& op, std::chrono::steady_clock::time_point paused_at);
  Status FreezeVmDisk(Taking& t, Operation& op);
  Status WriteSnapshotDir(Taking& t, Operation& op);
  Status LinkFrozenDisk(Taking& t, Operation& op);
  Status Register(Taking& t);
  // Undoes a failed take: the directories and RAM image written, the lease.
  void Discard(Taking& t);
  // The frozen disk image the snapshot's disk link points at.
  Result<std::string> FrozenDiskOf(const std::string& dir, const SnapshotManifest& m);
  // Snapshots whose frozen disk lies on `frozen` (taken later of the same VM).
  std::vector<std::string> SnapshotsOnDisk(const std::string& frozen);

  vm::VmService& vms_;
  registry::Registry& registry_;
  SnapshotTable rows_;
  TemplateTable templates_;  // read: a template's snapshot is not deleted under it
  VerifiedFiles verified_;
  SnapshotCopy copy_mode_ = SnapshotCopy::kLive;
  SpareQemus* spares_ = nullptr;
  std::mutex mu_;
  std::set<std::string> in_progress_;  // snapshot names being written
};

}  // namespace ferry::snapshot

// How a VM's QEMU is launched: one alternative of LaunchPlan per launch kind, each carrying only
// what that kind needs. The launcher (vm_launcher.h) never tests the kind in its steps: it reads
// what differs between kinds from one LaunchShape, built in one place (ShapeOf, launch_plan.cc).
//
//   BootLaunch               RAM: a new file of its own, share=on. QEMU: spawned, boots.
//                            Forwards on its command line.
//   CloneLaunch              RAM: the snapshot's image, share=off (copy-on-write). QEMU: spawned
//                            with -incoming defer; restore: device state, then a new identity.
//                            Forwards added once the identity is new.
//   PooledCloneLaunch        As CloneLaunch, but QEMU comes from a template's warm pool.
//   IncomingMigrationLaunch  RAM: a new file of its own, share=on. QEMU: spawned with -incoming
//                            defer; restore: the source's stream. Forwards on its command line.
//   HoldRestoreLaunch        RAM: a new file of its own, share=on, which the restore step fills
//                            from the hold before loading the device state. QEMU: spawned with
//                            -incoming defer. Identity, network and disk as the held VM had them.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "core/status.h"
#include "vm/vm_origin.h"
#include "vm/vm_paths.h"

namespace ferry {
class Operation;
}

namespace ferry::vm {

class VmRuntime;

// What a restore step leaves behind, recorded in the VM.
struct RestoredGuest {
  nlohmann::json timings = nlohmann::json::object();  // the VM's `timings`, e.g. a clone's phases
  std::string mac;  // the guest's MAC after the restore; "" keeps the one QEMU was given
};

// Runs once QMP answers, while the VM is still unregistered as running; QEMU was started paused
// with -incoming defer. The VM becomes running (and ready) only if this succeeds.
using RestoreStep = std::function<Result<RestoredGuest>(VmRuntime&, Operation&)>;

// A QEMU started ahead of need (warm pool), paused with -incoming defer, waiting for a VM.
struct PrelaunchedQemu {
  std::shared_ptr<VmRuntime> runtime;
  VmPaths paths;
  std::vector<std::string> argv;
  // Tap networking: the id of the VM that takes this QEMU, whose tap (named after it, off the
  // bridge until the clone's address is set) the QEMU already has; "" otherwise.
  std::string vm_id;
  // A spare (VmLauncher::PrelaunchSpare): started before anyone knew which snapshot it would
  // run, with no guest RAM yet. The clone that takes it links its snapshot's RAM image into
  // `ram_slot_dir`, which QEMU reaches as its descriptor `ram_slot_fd`, and binds it
  // (qemu::BindSpareRam) before its restore. Unset for a warm-pool QEMU.
  std::string ram_slot_dir;
  int ram_slot_fd = -1;
  uint64_t ram_kib = 0;  // the guest RAM it will map (qemu::GuestRamKib)
};

// Boots the VM's image with a RAM file of its own: a create, and every start.
struct BootLaunch {};

// A clone of a snapshot in a QEMU of its own.
struct CloneLaunch {
  std::string ram_image;  // the snapshot's RAM image, mapped copy-on-write, never written
  std::string mac;        // the parent's: the guest resumes with it, then takes a new one
  std::string vmgenid;    // a new VM generation ID; "" for QEMU's "auto"
  // Non-empty: the clone's disk is a new overlay on the first of these frozen images (its
  // snapshot's disk), which lie on the rest of them.
  std::vector<std::string> disk_chain;
  CloneOrigin origin;   // recorded in the VM
  RestoreStep restore;  // device state, resume, new identity (snapshot/snapshot_service.cc)
};

// A clone whose QEMU a template's warm pool started ahead (VmService::Prelaunch with `clone`);
// the VM keeps that QEMU's directory.
struct PooledCloneLaunch {
  CloneLaunch clone;
  PrelaunchedQemu qemu;
};

// A VM arriving by live migration: QEMU waits with -incoming defer like a clone's, but the guest
// keeps its identity, its network (tap, forwards) and its VM generation ID.
struct IncomingMigrationLaunch {
  std::string mac;      // the source's
  std::string vmgenid;  // the source's; "" for QEMU's "auto"
  MigrationOrigin origin;
  RestoreStep restore;  // receives the guest from the source and resumes it
};

// A held VM brought back (hold/hold_restore.cc): the same machine, like an incoming migration
// whose memory and devices come from this host's store instead of a peer.
struct HoldRestoreLaunch {
  std::string mac;      // the held VM's
  std::string vmgenid;  // the held VM's; "" for QEMU's "auto"
  // Non-empty: the held disk, laid out in the VM's directory before the launch, lies on these
  // frozen images.
  std::vector<std::string> disk_chain;
  HoldOrigin origin;
  RestoreStep restore;  // fills the RAM file, loads the device state, resumes, wakes the guest
};

using LaunchPlan = std::variant<BootLaunch, CloneLaunch, PooledCloneLaunch,
                                IncomingMigrationLaunch, HoldRestoreLaunch>;

// Where guest RAM comes from.
enum class RamSource {
  kNewOwnFile,     // RAM_DIR/ID.ram, created (truncated) by this launch, mapped share=on
  kSnapshotImage,  // a snapshot's read-only image, mapped share=off; never the VM's to delete
};

// What a launch of one kind does; the launcher's steps read this, never the kind.
struct LaunchShape {
  const char* operation = "create";  // the kind of the operation that makes a VM this way
  RamSource ram = RamSource::kNewOwnFile;
  std::string ram_image;  // kSnapshotImage: its path
  // A clone: refused on tap networking (it would take its parent's address), and its forwards
  // are added only once its identity is new.
  bool new_identity = false;
  std::string mac;      // "" for a new one
  std::string vmgenid;  // "" for QEMU's "auto"
  std::vector<std::string> disk_chain;
  VmOrigin origin;
  const RestoreStep* restore = nullptr;  // set: QEMU waits with -incoming defer for it
  // Set: a QEMU that dies while restoring was ended by what the restore step saw first (a
  // migration stream breaking off), quoted as "<restore_cause> had seen: ...".
  const char* restore_cause = nullptr;
  const PrelaunchedQemu* prelaunched = nullptr;  // set: QEMU already runs, in its own directory
  // A hold restore: the VM is the held one, so the name its hold reserves is its own.
  bool is_held_vm = false;
};

// The shape of `plan`; its pointers point into `plan`, which must outlive it.
LaunchShape ShapeOf(const LaunchPlan& plan);

}  // namespace ferry::vm

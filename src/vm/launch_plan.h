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
//
// Room for a hold restore (a held VM relaunched with its identity from its own RAM file and
// saved device state): add `HoldRestoreLaunch {std::string ram_file; RestoreStep restore; ...}`
// to LaunchPlan and one case to ShapeOf: ram = RamSource::kKeptOwnFile (the VM's own file,
// mapped share=on, neither created nor truncated), `restore` set (it loads the device state and
// resumes), new_identity = false (no identity reset; forwards and tap as for a boot), operation
// "restore". It runs on an existing VM like a start (VmService::RunLaunch, new_vm = false). Of
// the launcher's steps only the RAM-file step changes (VmLauncher::PrepareFiles): it opens the
// kept file and does not mark it on the rollback, which so keeps it on failure.
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

using LaunchPlan =
    std::variant<BootLaunch, CloneLaunch, PooledCloneLaunch, IncomingMigrationLaunch>;

// Where guest RAM comes from.
enum class RamSource {
  kNewOwnFile,     // RAM_DIR/ID.ram, created (truncated) by this launch, mapped share=on
  kSnapshotImage,  // a snapshot's read-only image, mapped share=off; never the VM's to delete
  // kKeptOwnFile: the VM's own file as a hold left it (a hold restore), mapped share=on
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
};

// The shape of `plan`; its pointers point into `plan`, which must outlive it.
LaunchShape ShapeOf(const LaunchPlan& plan);

}  // namespace ferry::vm

// Launching a VM's QEMU, for every launch kind (launch_plan.h), as named steps:
//
//   1. command line     QEMU's arguments and the files it needs (LaunchSpecFor)
//   2. directory        the VM's directory                      (not for a pooled QEMU)
//   3. RAM file         a new sparse file of the VM's own       (RamSource::kNewOwnFile)
//   4. disk             a new VM's blank disk, or a clone's overlay
//   5. tap              the host end of a tap VM's NIC          (tap networking)
//   6. QEMU             spawned as a uid of its own, or taken from the warm pool; on record
//                       before QMP connects
//   7. restore          a clone's or an incoming guest's state  (restore plans), then its forwards
//   8. register         booting, or running and ready; the launch is committed
//
// Each step that makes something marks it on a LaunchRollback once made (the RAM file and the
// tap just before, so that a half-made one goes too). A launch that fails before it is committed
// is undone by it, in reverse order, exactly as far as it got: the QEMU it holds killed (which
// gives back its uid lease), the recorded pid cleared, the tap and the RAM file removed, and for
// a new VM its directory, registry row and table entry.
//
// Everything the steps do to the host goes through LaunchSteps (launch_steps.h), so unit tests
// fail each one.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/operation.h"
#include "core/status.h"
#include "core/unique_fd.h"
#include "qemu/accelerator.h"
#include "qemu/launch_spec.h"
#include "vm/image.h"
#include "vm/launch_plan.h"
#include "vm/launch_steps.h"
#include "vm/qemu_files.h"
#include "vm/qemu_user.h"
#include "vm/vm_runtime.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

// What the launcher needs of the VM service.
struct LaunchHooks {
  std::function<void(Vm&)> persist;  // REQUIRES: vm.mu held
  std::function<VmRuntime::Callbacks(const std::shared_ptr<Vm>&)> callbacks_for;
  // Removes a new VM from the service's table and the registry, and drops its runtime (its
  // directory is gone by then).
  std::function<void(const std::shared_ptr<Vm>&)> unregister;
  const std::atomic<bool>* shutting_down = nullptr;
};

// Undoes the steps of one launch that were done, in reverse order, unless it was committed.
// Used by one thread, the launch's; it takes vm.mu itself.
class LaunchRollback {
 public:
  LaunchRollback(std::shared_ptr<Vm> vm, LaunchSteps& steps, const LaunchHooks& hooks);
  ~LaunchRollback() { Undo(); }
  LaunchRollback(const LaunchRollback&) = delete;
  LaunchRollback& operator=(const LaunchRollback&) = delete;

  // Steps, each marked once done.
  void VmRegistered() { registered_ = true; }  // a new VM: its row, table entry and directory
  void LaunchBegun() { launch_begun_ = true; }
  void RamFileMade(std::string path) { ram_file_ = std::move(path); }
  void TapMade() { tap_ = true; }  // marked before the tap is made: a half-made one goes too
  void SpawnRecorded() { spawn_recorded_ = true; }
  void QemuHeld(std::shared_ptr<VmRuntime> rt) { qemu_ = std::move(rt); }
  // The VM is registered as booting or running: nothing is undone any more.
  void Commit() { committed_ = true; }
  // Undoes what was marked (once); a no-op after Commit.
  void Undo();

 private:
  std::shared_ptr<Vm> vm_;
  LaunchSteps& steps_;
  const LaunchHooks& hooks_;
  bool committed_ = false;
  bool registered_ = false;
  bool launch_begun_ = false;
  std::string ram_file_;
  bool tap_ = false;
  bool spawn_recorded_ = false;
  std::shared_ptr<VmRuntime> qemu_;
};

class VmLauncher {
 public:
  struct Config {
    std::string qemu_binary;
    qemu::QemuVersion qemu_version{};
    qemu::Accelerator accelerator = qemu::Accelerator::kTcg;
    std::chrono::milliseconds ready_timeout{300000};
  };
  VmLauncher(Config config, const ImageCatalog& images, LaunchSteps& steps, LaunchHooks hooks);

  const LaunchHooks& hooks() const { return hooks_; }
  LaunchSteps& steps() { return steps_; }

  // Starts QEMU for a VM whose lifecycle this thread holds, the way `plan` says, marking each
  // step on `rollback` and committing it once the VM is registered; then, with wait_ready, waits
  // for the guest. The caller undoes a failed launch (rollback.Undo()).
  Status Launch(const std::shared_ptr<Vm>& vm, Operation& op, const LaunchPlan& plan,
                bool wait_ready, LaunchRollback& rollback);
  // Starts a QEMU for a clone that does not exist yet (warm pool); its callbacks are set when
  // a PooledCloneLaunch hands it to a VM.
  Result<PrelaunchedQemu> Prelaunch(const VmSpec& spec, const CloneLaunch& clone,
                                    const VmPaths& paths);
  // Starts a spare QEMU (launch_plan.h, PrelaunchedQemu::ram_slot_dir) for a clone of any
  // snapshot of `spec`'s image, CPUs and memory, on user networking and without a disk.
  Result<PrelaunchedQemu> PrelaunchSpare(const VmSpec& spec, const VmPaths& paths,
                                         const std::string& ram_slot_dir,
                                         const OnSpawned& on_spawned);
  Result<QemuLaunch> LaunchSpecFor(const VmRecord& r, const VmPaths& paths,
                                   const LaunchShape& shape);

 private:
  Status PrepareFiles(Vm& vm, const LaunchShape& shape, const QemuLaunch& launch, Operation& op,
                      LaunchRollback& rollback, UniqueFd& ram);
  Status PrepareTap(Vm& vm, const LaunchShape& shape, Operation& op, LaunchRollback& rollback);
  // The QEMU of this launch (spawned, or from the pool) and its command line.
  struct Started {
    std::shared_ptr<VmRuntime> runtime;
    std::vector<std::string> argv;
  };
  Result<Started> StartQemu(const std::shared_ptr<Vm>& vm, const LaunchShape& shape,
                            QemuLaunch& launch, UniqueFd ram, LaunchRollback& rollback);
  Status Restore(const std::shared_ptr<Vm>& vm, const LaunchShape& shape, VmRuntime& rt,
                 Operation& op);
  Status AddForwards(Vm& vm, VmRuntime& rt);
  // A clone on tap networking, once its identity is new: its tap attached to the bridge, then
  // its address announced by the guest. Its timings (null for user networking).
  Result<nlohmann::json> JoinSegment(Vm& vm, VmRuntime& rt, Operation& op);
  Status WaitReady(Vm& vm);

  Config config_;
  const ImageCatalog& images_;
  LaunchSteps& steps_;
  LaunchHooks hooks_;
};

}  // namespace ferry::vm

// One VM as ferryd holds it, and its state machine. Three parts move together, under Vm::mu:
// the persisted VmState (vm_record.h), who holds the VM's lifecycle (VmHolder), and what an end
// of its QEMU means (ExitHandling). Every change to them is one of the transitions below; nothing
// else writes Vm::rec.state, Vm::holder or Vm::exit_handling.
//
// VmState (persisted):
//
//        VmService::CreateFrom
//                 │
//                 ▼          the launch fails before it registers its QEMU:
//             creating ──────────────────────────────────────▶ dropped, as if refused
//              │     │ Restored (clone, incoming migration)
//       Booted │     └──────────────────────────┐
//              ▼                                ▼
//  ┌───────▶ booting ─────── GuestReady ─────▶ running
//  │           │  ▲                            │
//  │    Paused │  │ Resumed             Paused │
//  │           ▼  │                            │
//  │         paused ◀──────────────────────────┘
//  │         (Resumed goes back to running when the guest was ready, else to booting)
//  │
//  │    booting, running, paused ──StopBegun──▶ stopping ──Stopped──▶ stopped
//  │    booting, running, paused, stopping ──ApplyExit──▶ stopped (the exit was expected, or the
//  │                                                      guest powered off) or failed
//  └──Booted── stopped, failed (a start)
//
// Re-adoption at start-up (vm_adoption.cc) puts a VM whose QEMU still runs in booting, running or
// paused (Readopted), and one whose QEMU is gone through ApplyExit.
//
// VmHolder (at most one operation changes a VM's lifecycle at a time):
//
//   free ──Claim(op)──▶ op ──Release──▶ free
//   free, or held by the deleting op ──DeleteBegun──▶ delete ──record removed──▶ (VM gone)
//                                                              └──DeleteFailed──▶ free
//
// ExitHandling (what QEMU's end means when it comes; VmService::OnExit):
//
//   kFails ──LaunchBegun──▶ kDeferred ──Booted, Restored──▶ kFails (a recorded exit applied)
//                              ├──StopDeferringExits (launch failed)──▶ kFails
//                              └──LaunchAbandoned──▶ kDeferredStops ──StopDeferringExits──▶ kStops
//   any ──StopBegun, DeleteBegun──▶ kStops
//   ReadoptBegun: kDeferred (kDeferredStops for a stopping VM) ──Readopted, StopDeferringExits──▶
//   kFails (kStops)
//
// Lock order: VmService::mu_ (the table of VMs), then Vm::mu. Neither is held during a QMP or
// guest call or while waiting for a QEMU to end.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/process.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "vm/launch_plan.h"
#include "vm/vm_paths.h"
#include "vm/vm_record.h"

namespace ferry::vm {

class VmRuntime;
struct Vm;

// Who holds a VM's lifecycle: nobody, one operation (create, clone, migrate-in, start, stop, or
// the holder of a lease: a snapshot, a migration), or a delete in progress.
class VmHolder {
 public:
  bool free() const { return kind_ == Kind::kFree; }
  // True when free or held by operation `op_id` (which may then act again).
  bool FreeFor(const std::string& op_id) const;
  // The operation's id, "delete", or "" when free: what `vm show` reports as busy_with.
  std::string Describe() const;

 private:
  friend void Claim(Vm&, const std::string&);
  friend void Release(Vm&);
  friend void DeleteBegun(Vm&);
  friend void DeleteFailed(Vm&);
  enum class Kind { kFree, kOperation, kDelete };
  Kind kind_ = Kind::kFree;
  std::string op_id_;
};

// What QEMU's end means when it comes.
enum class ExitHandling {
  kFails,          // applied at once: failed, unless the guest powered off (then stopped)
  kStops,          // applied at once: stopped (a stop or a forced delete is ending QEMU)
  kDeferred,       // recorded; the launcher or re-adoption applies it, as kFails would
  kDeferredStops,  // recorded; applied as kStops would (a launch killing its QEMU, re-adopting a
                   // stopping VM)
};

// One VM. Lock order: VmService::mu_, then `mu`.
struct Vm {
  Mutex mu;
  std::condition_variable cv;  // notified on every change that is persisted (VmService::Persist)
  VmPaths paths;               // set before the VM is shared, never changed
  VmRecord rec FERRY_GUARDED_BY(mu);
  // The QEMU's runtime, once registered; kept after it ends.
  std::shared_ptr<VmRuntime> rt FERRY_GUARDED_BY(mu);
  VmHolder holder FERRY_GUARDED_BY(mu);
  ExitHandling exit_handling FERRY_GUARDED_BY(mu) = ExitHandling::kFails;
  std::string shutdown_reason FERRY_GUARDED_BY(mu);      // from QEMU's SHUTDOWN event, if any
  std::optional<ProcessExit> exit FERRY_GUARDED_BY(mu);  // QEMU's exit, once it happened
  // Its record is gone from the registry: a late event (QEMU's exit after a forced delete) has
  // nothing left to record.
  bool deleted FERRY_GUARDED_BY(mu) = false;
};

// The transitions. Each requires vm.mu held (FERRY_REQUIRES, checked by clang's -Wthread-safety). A
// `bool` result says whether the VM's state changed (the caller then persists it).

// Holder.
// REQUIRES: vm.holder.FreeFor(op_id)
void Claim(Vm& vm, const std::string& op_id) FERRY_REQUIRES(vm.mu);
void Release(Vm& vm) FERRY_REQUIRES(vm.mu);
// FailedPrecondition naming the holder unless the VM is free (or held by `op_id`).
Status CheckFree(const Vm& vm, const std::string& op_id = "") FERRY_REQUIRES(vm.mu);
// As CheckFree, for a verb that takes no operation; `what` says what was asked ("paused").
Status RefuseBusy(const Vm& vm, const char* what) FERRY_REQUIRES(vm.mu);
// Refuses unless the VM is free (or held by `holder`) and, unless `force`, has no QEMU.
Status CheckDeletable(const Vm& vm, bool force, const std::string& holder) FERRY_REQUIRES(vm.mu);
// REQUIRES: CheckDeletable; then QEMU's end means stopped.
void DeleteBegun(Vm& vm) FERRY_REQUIRES(vm.mu);
// The record stays: free again, a later delete may try again.
void DeleteFailed(Vm& vm) FERRY_REQUIRES(vm.mu);

// Launch (vm_launcher.cc).
// Stopped or failed, and free.
Status CheckStartable(const Vm& vm) FERRY_REQUIRES(vm.mu);
// Exits are recorded, not applied.
void LaunchBegun(Vm& vm) FERRY_REQUIRES(vm.mu);
void SpawnRecorded(Vm& vm, pid_t pid, uint64_t start_time, const std::vector<std::string>& argv)
    FERRY_REQUIRES(vm.mu);
// The spawned QEMU was killed before it was registered.
void SpawnUndone(Vm& vm) FERRY_REQUIRES(vm.mu);
// A restore-plan QEMU runs (spawned or from the pool) and is on record before its restore.
void RestoreBegun(Vm& vm, const std::shared_ptr<VmRuntime>& rt,
                  const std::vector<std::string>& argv) FERRY_REQUIRES(vm.mu);
// The launch kills its QEMU: its end means stopped.
void LaunchAbandoned(Vm& vm) FERRY_REQUIRES(vm.mu);
// A failed launch or re-adoption: exits are applied again.
void StopDeferringExits(Vm& vm) FERRY_REQUIRES(vm.mu);
// QEMU booted: booting (or what a recorded exit makes of it).
void Booted(Vm& vm, const std::shared_ptr<VmRuntime>& rt, const std::vector<std::string>& argv)
    FERRY_REQUIRES(vm.mu);
// A restore step succeeded: running, and ready (or what a recorded exit makes of it).
void Restored(Vm& vm, const RestoredGuest& guest) FERRY_REQUIRES(vm.mu);

// Guest and QEMU events.
bool GuestReady(Vm& vm) FERRY_REQUIRES(vm.mu);
// Running or booting -> paused.
bool Paused(Vm& vm) FERRY_REQUIRES(vm.mu);
// Paused -> running (guest ready) or booting.
bool Resumed(Vm& vm) FERRY_REQUIRES(vm.mu);
// Records QEMU's exit; true when it is to be applied now (not deferred).
bool QemuExited(Vm& vm, const ProcessExit& exit) FERRY_REQUIRES(vm.mu);
// What QEMU's exit means for the VM: stopped or failed; then the VM's own RAM file and its tap
// go. REQUIRES: vm.exit set.
void ApplyExit(Vm& vm) FERRY_REQUIRES(vm.mu);

// Stop.
Status CheckStoppable(const Vm& vm) FERRY_REQUIRES(vm.mu);
// -> stopping; QEMU's end means stopped.
void StopBegun(Vm& vm) FERRY_REQUIRES(vm.mu);
// The stop is done: stopped, in `mode`. `qemu_gone`: its QEMU's exit was seen (else it is
// recorded as unknown).
void Stopped(Vm& vm, const std::string& mode, bool qemu_gone) FERRY_REQUIRES(vm.mu);

// Re-adoption (vm_adoption.cc).
// Exits are recorded, not applied.
void ReadoptBegun(Vm& vm) FERRY_REQUIRES(vm.mu);
// The QEMU answered: paused if it says so (not only "paused": a migrated-away source waits in
// "postmigrate"), else running or booting.
void Readopted(Vm& vm, const std::shared_ptr<VmRuntime>& rt, bool paused) FERRY_REQUIRES(vm.mu);
// A QEMU recorded for a launch that never finished (ferryd died in it): failed, saying so;
// `killed` says whether the restarted ferryd killed it.
void LaunchInterrupted(Vm& vm, bool killed) FERRY_REQUIRES(vm.mu);

// A tap VM's tap lives as long as its QEMU: removed once no QEMU of the VM runs. Idempotent.
void RemoveVmTap(const VmRecord& r);

}  // namespace ferry::vm

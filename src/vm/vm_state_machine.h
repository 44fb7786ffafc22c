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
  std::mutex mu;               // guards every member below
  std::condition_variable cv;  // notified on every change that is persisted (VmService::Persist)
  VmRecord rec;
  VmPaths paths;
  std::shared_ptr<VmRuntime> rt;  // the QEMU's runtime, once registered; kept after it ends
  VmHolder holder;
  ExitHandling exit_handling = ExitHandling::kFails;
  std::string shutdown_reason;      // from QEMU's SHUTDOWN event, if one came
  std::optional<ProcessExit> exit;  // QEMU's exit, once it happened
};

// The transitions. REQUIRES: vm.mu held, for every one. A `bool` result says whether the VM's
// state changed (the caller then persists it).

// Holder.
void Claim(Vm& vm, const std::string& op_id);  // REQUIRES: vm.holder.FreeFor(op_id)
void Release(Vm& vm);
// FailedPrecondition naming the holder unless the VM is free (or held by `op_id`).
Status CheckFree(const Vm& vm, const std::string& op_id = "");
// As CheckFree, for a verb that takes no operation; `what` says what was asked ("paused").
Status RefuseBusy(const Vm& vm, const char* what);
// Refuses unless the VM is free (or held by `holder`) and, unless `force`, has no QEMU.
Status CheckDeletable(const Vm& vm, bool force, const std::string& holder);
void DeleteBegun(Vm& vm);   // REQUIRES: CheckDeletable; then QEMU's end means stopped
void DeleteFailed(Vm& vm);  // the record stays: free again, a later delete may try again

// Launch (vm_launcher.cc).
Status CheckStartable(const Vm& vm);  // stopped or failed, and free
void LaunchBegun(Vm& vm);             // exits are recorded, not applied
void SpawnRecorded(Vm& vm, pid_t pid, uint64_t start_time, const std::vector<std::string>& argv);
void SpawnUndone(Vm& vm);  // the spawned QEMU was killed before it was registered
// A restore-plan QEMU runs (spawned or from the pool) and is on record before its restore.
void RestoreBegun(Vm& vm, const std::shared_ptr<VmRuntime>& rt,
                  const std::vector<std::string>& argv);
void LaunchAbandoned(Vm& vm);     // the launch kills its QEMU: its end means stopped
void StopDeferringExits(Vm& vm);  // a failed launch or re-adoption: exits are applied again
// QEMU booted: booting (or what a recorded exit makes of it).
void Booted(Vm& vm, const std::shared_ptr<VmRuntime>& rt, const std::vector<std::string>& argv);
// A restore step succeeded: running, and ready (or what a recorded exit makes of it).
void Restored(Vm& vm, const RestoredGuest& guest);

// Guest and QEMU events.
bool GuestReady(Vm& vm);
bool Paused(Vm& vm);   // running or booting -> paused
bool Resumed(Vm& vm);  // paused -> running (guest ready) or booting
// Records QEMU's exit; true when it is to be applied now (not deferred).
bool QemuExited(Vm& vm, const ProcessExit& exit);
// What QEMU's exit means for the VM: stopped or failed; then the VM's own RAM file and its tap
// go. REQUIRES: vm.exit set.
void ApplyExit(Vm& vm);

// Stop.
Status CheckStoppable(const Vm& vm);
void StopBegun(Vm& vm);  // -> stopping; QEMU's end means stopped
// The stop is done: stopped, in `mode`. `qemu_gone`: its QEMU's exit was seen (else it is
// recorded as unknown).
void Stopped(Vm& vm, const std::string& mode, bool qemu_gone);

// Re-adoption (vm_adoption.cc).
void ReadoptBegun(Vm& vm);  // exits are recorded, not applied
// The QEMU answered: paused if it says so (not only "paused": a migrated-away source waits in
// "postmigrate"), else running or booting.
void Readopted(Vm& vm, const std::shared_ptr<VmRuntime>& rt, bool paused);
// A QEMU recorded for a launch that never finished (ferryd died in it): failed, saying so;
// `killed` says whether the restarted ferryd killed it.
void LaunchInterrupted(Vm& vm, bool killed);

// A tap VM's tap lives as long as its QEMU: removed once no QEMU of the VM runs. Idempotent.
void RemoveVmTap(const VmRecord& r);

}  // namespace ferry::vm

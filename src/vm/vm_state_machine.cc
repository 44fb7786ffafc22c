#include "vm/vm_state_machine.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/operation.h"
#include "vm/tap_device.h"
#include "vm/vm_runtime.h"

namespace ferry::vm {

namespace {

bool Deferred(ExitHandling h) {
  return h == ExitHandling::kDeferred || h == ExitHandling::kDeferredStops;
}

bool ExitExpected(ExitHandling h) {
  return h == ExitHandling::kStops || h == ExitHandling::kDeferredStops;
}

std::string BusyMessage(const Vm& vm) FERRY_REQUIRES(vm.mu) {
  return "vm " + vm.rec.spec.name + " is busy with operation " + vm.holder.Describe() +
         "; wait for it to finish";
}

// The guest's memory died with its QEMU: give the tmpfs pages back (a clone's RAM file is its
// snapshot's, which stays).
void RemoveOwnRamFile(const VmRecord& r) {
  if (r.ram_owned && !r.ram_path.empty()) ::unlink(r.ram_path.c_str());
}

}  // namespace

bool VmHolder::FreeFor(const std::string& op_id) const {
  return kind_ == Kind::kFree || (kind_ == Kind::kOperation && !op_id.empty() && op_id == op_id_);
}

std::string VmHolder::Describe() const {
  switch (kind_) {
    case Kind::kFree:
      return "";
    case Kind::kOperation:
      return op_id_;
    case Kind::kDelete:
      return "delete";
  }
  return "";
}

void RemoveVmTap(const VmRecord& r) {
  if (r.spec.network.mode != NetworkMode::kTap) return;
  Status st = TapDevice::ForVm(r.id, r.spec.network.bridge).Remove();
  if (!st.ok()) spdlog::warn("vm {}: {}", r.spec.name, st.message());
}

void Claim(Vm& vm, const std::string& op_id) {
  vm.holder.kind_ = VmHolder::Kind::kOperation;
  vm.holder.op_id_ = op_id;
}

void Release(Vm& vm) { vm.holder = VmHolder(); }

Status CheckFree(const Vm& vm, const std::string& op_id) {
  if (vm.holder.FreeFor(op_id)) return Status::Ok();
  return Status::FailedPrecondition(BusyMessage(vm));
}

Status RefuseBusy(const Vm& vm, const char* what) {
  if (vm.holder.free()) return Status::Ok();
  const std::string busy = vm.holder.Describe();
  return Status::FailedPrecondition(
      "vm " + vm.rec.spec.name + " is busy with operation " + busy + " and cannot be " + what +
      " now; wait for it to finish (ferry operation show " + busy + ")");
}

Status CheckDeletable(const Vm& vm, bool force, const std::string& holder) {
  // The deleting holder's lease: a migration settled at its destination deletes its source.
  const bool held_by_deleter = !holder.empty() && vm.holder.Describe() == holder;
  if (!vm.holder.free() && !held_by_deleter) return Status::FailedPrecondition(BusyMessage(vm));
  const std::string& name = vm.rec.spec.name;
  if (HasProcess(vm.rec.state) && !force) {
    return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm.rec.state) +
                                      "; stop it first (ferry vm stop " + name +
                                      ") or delete it with --force");
  }
  return Status::Ok();
}

void DeleteBegun(Vm& vm) {
  vm.holder.kind_ = VmHolder::Kind::kDelete;
  vm.holder.op_id_.clear();
  vm.exit_handling = ExitHandling::kStops;
}

void DeleteFailed(Vm& vm) { vm.holder = VmHolder(); }

Status CheckStartable(const Vm& vm) {
  FERRY_RETURN_IF_ERROR(CheckFree(vm));
  if (vm.rec.state != VmState::kStopped && vm.rec.state != VmState::kFailed) {
    return Status::FailedPrecondition("vm " + vm.rec.spec.name + " is " +
                                      VmStateName(vm.rec.state) +
                                      "; only a stopped or failed VM can be started");
  }
  return Status::Ok();
}

void LaunchBegun(Vm& vm) {
  vm.exit_handling = ExitHandling::kDeferred;
  vm.exit.reset();
  vm.shutdown_reason.clear();
}

void SpawnRecorded(Vm& vm, pid_t pid, uint64_t start_time, const std::vector<std::string>& argv) {
  vm.rec.pid = pid;
  vm.rec.pid_start_time = start_time;
  vm.rec.qemu_argv = argv;
}

void SpawnUndone(Vm& vm) {
  vm.rec.pid = 0;
  vm.rec.pid_start_time = 0;
}

void RestoreBegun(Vm& vm, const std::shared_ptr<VmRuntime>& rt,
                  const std::vector<std::string>& argv) {
  vm.rt = rt;
  SpawnRecorded(vm, rt->pid(), rt->start_time(), argv);
}

void LaunchAbandoned(Vm& vm) { vm.exit_handling = ExitHandling::kDeferredStops; }

void StopDeferringExits(Vm& vm) {
  vm.exit_handling = ExitExpected(vm.exit_handling) ? ExitHandling::kStops : ExitHandling::kFails;
}

void Booted(Vm& vm, const std::shared_ptr<VmRuntime>& rt, const std::vector<std::string>& argv) {
  VmRecord& r = vm.rec;
  vm.rt = rt;
  SpawnRecorded(vm, rt->pid(), rt->start_time(), argv);
  r.state = VmState::kBooting;
  r.guest_ready = false;
  r.started_at_ms = NowUnixMs();
  r.ready_at_ms = 0;
  r.failure.clear();
  r.last_words.clear();
  vm.exit_handling = ExitHandling::kFails;
  if (vm.exit) ApplyExit(vm);  // QEMU died between its start and now
}

void Restored(Vm& vm, const RestoredGuest& guest) {
  VmRecord& r = vm.rec;
  r.state = VmState::kRunning;
  r.guest_ready = true;
  r.started_at_ms = NowUnixMs();
  r.ready_at_ms = r.started_at_ms;
  r.timings = guest.timings;
  if (!guest.mac.empty()) r.mac = guest.mac;
  vm.exit_handling = ExitHandling::kFails;
  if (vm.exit) ApplyExit(vm);
}

bool GuestReady(Vm& vm) {
  VmRecord& r = vm.rec;
  if (r.guest_ready || !HasProcess(r.state)) return false;
  r.guest_ready = true;
  r.ready_at_ms = NowUnixMs();
  if (r.state == VmState::kBooting) r.state = VmState::kRunning;
  return true;
}

bool Paused(Vm& vm) {
  VmRecord& r = vm.rec;
  if (r.state != VmState::kRunning && r.state != VmState::kBooting) return false;
  r.state = VmState::kPaused;
  return true;
}

bool Resumed(Vm& vm) {
  VmRecord& r = vm.rec;
  if (r.state != VmState::kPaused) return false;
  r.state = r.guest_ready ? VmState::kRunning : VmState::kBooting;
  return true;
}

bool QemuExited(Vm& vm, const ProcessExit& exit) {
  vm.exit = exit;
  return !Deferred(vm.exit_handling);
}

void ApplyExit(Vm& vm) {
  VmRecord& r = vm.rec;
  const ProcessExit& ex = *vm.exit;
  const bool expected = ExitExpected(vm.exit_handling);
  // QEMU exits 0 after a guest power-off; an unknown status (re-adopted QEMU) is taken as that.
  const bool guest_powered_off =
      vm.shutdown_reason == "guest-shutdown" && !(ex.known && (ex.signaled || ex.code != 0));
  if (expected || guest_powered_off) {
    r.state = VmState::kStopped;
    if (!expected) r.stop_mode = "guest";
    r.failure.clear();
    r.last_words.clear();
  } else {
    r.state = VmState::kFailed;
    r.failure = "QEMU (pid " + std::to_string(r.pid) + ") " + ex.Describe();
    if (vm.shutdown_reason == "guest-reset" || vm.shutdown_reason == "guest-panic") {
      r.failure += " after the guest " +
                   std::string(vm.shutdown_reason == "guest-panic" ? "panicked"
                                                                   : "rebooted (kernel panic?)") +
                   "; see `ferry vm console " + r.spec.name + "`";
    }
    r.last_words = QemuLastWords(vm.paths);
    spdlog::warn("vm {}: {}", r.spec.name, r.failure);
  }
  r.guest_ready = false;
  r.pid = 0;
  r.pid_start_time = 0;
  RemoveOwnRamFile(r);
  RemoveVmTap(r);
}

Status CheckStoppable(const Vm& vm) {
  const VmRecord& r = vm.rec;
  const std::string& name = r.spec.name;
  if (r.state == VmState::kStopped) {
    return Status::FailedPrecondition("vm " + name + " is already stopped; nothing to do");
  }
  if (r.state == VmState::kFailed) {
    return Status::FailedPrecondition("vm " + name + " has failed (" + r.failure +
                                      "); nothing runs to stop: start or delete it");
  }
  return CheckFree(vm);
}

void StopBegun(Vm& vm) {
  vm.rec.state = VmState::kStopping;
  vm.exit_handling = ExitHandling::kStops;
}

void Stopped(Vm& vm, const std::string& mode, bool qemu_gone) {
  if (!qemu_gone) {
    // No runtime at all (e.g. re-adoption failed) or an unkillable QEMU: record what we know.
    vm.exit = ProcessExit{};
    ApplyExit(vm);
  }
  vm.rec.stop_mode = mode;
  vm.rec.state = VmState::kStopped;
  RemoveVmTap(vm.rec);  // now, not when QEMU's exit is handled: the stop ends with it gone
}

void ReadoptBegun(Vm& vm) {
  vm.exit_handling =
      vm.rec.state == VmState::kStopping ? ExitHandling::kDeferredStops : ExitHandling::kDeferred;
}

void Readopted(Vm& vm, const std::shared_ptr<VmRuntime>& rt, bool paused) {
  VmRecord& r = vm.rec;
  vm.rt = rt;
  StopDeferringExits(vm);
  r.state = paused ? VmState::kPaused : (r.guest_ready ? VmState::kRunning : VmState::kBooting);
}

void LaunchInterrupted(Vm& vm, bool killed) {
  VmRecord& r = vm.rec;
  r.state = VmState::kFailed;
  r.failure = "ferryd stopped while it launched this VM's QEMU (pid " + std::to_string(r.pid) +
              "); " +
              (killed ? "the restarted ferryd killed that QEMU"
                      : "that QEMU had ended before ferryd restarted") +
              "; start the VM again (ferry vm start " + r.spec.name + ")";
  r.guest_ready = false;
  r.pid = 0;
  r.pid_start_time = 0;
  RemoveOwnRamFile(r);
  RemoveVmTap(r);
}

}  // namespace ferry::vm

// Re-adoption at start-up: the registry's VMs loaded again, each QEMU that still runs re-attached
// by pid and start time, what a ferryd that died mid-launch left finished or removed; then the
// start-up sweeps (QEMUs no record owns, taps no QEMU uses). See docs/architecture.md,
// "Re-adoption after a ferryd restart".
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <variant>

#include "core/files.h"
#include "core/process.h"
#include "qemu/qmp_commands.h"
#include "vm/adoption_plan.h"
#include "vm/tap_device.h"
#include "vm/tap_sweep.h"
#include "vm/vm_origin.h"
#include "vm/vm_service.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

namespace {
constexpr std::chrono::milliseconds kKillTimeout(10000);

const char* LaunchKindOf(const VmOrigin& origin) {
  if (std::holds_alternative<HoldOrigin>(origin)) return "hold restore";
  if (std::holds_alternative<MigrationOrigin>(origin)) return "incoming migration";
  if (std::holds_alternative<CloneOrigin>(origin)) return "clone";
  return "create";
}
}  // namespace

QemuUidLease VmService::AdoptedUid(pid_t pid) {
  if (!qemu_uids_) return {};
  auto uid = ProcessUid(pid);
  return uid.ok() ? qemu_uids_->Adopt(*uid) : QemuUidLease{};
}

Status VmService::Readopt() {
  FERRY_ASSIGN_OR_RETURN(auto rows, vm_rows_.List());
  for (auto& [name, rec] : rows) ReadoptOne(std::move(rec));
  SweepUnownedQemus();
  SweepLeftoverTaps();
  return Status::Ok();
}

void VmService::ReadoptOne(VmRecord rec) {
  auto vm = std::make_shared<Vm>();
  vm->paths =
      rec.dir.empty() ? VmPaths::For(config_.state_dir, rec.spec.name) : VmPaths::ForDir(rec.dir);
  vm->rec = std::move(rec);
  VmRecord& r = vm->rec;
  const AdoptionPlan plan = PlanAdoption(r);
  // Only a restore that already runs here (the source said finish, this host resumed it) is
  // kept of the unfinished ones.
  if (plan == AdoptionPlan::kDiscard ||
      (plan == AdoptionPlan::kKeepIfResumed && !KeepResumedIncoming(vm))) {
    DiscardUnfinished(vm);
    return;
  }
  vms_[r.spec.name] = vm;
  switch (plan) {
    case AdoptionPlan::kEndInterruptedLaunch:
      return EndInterruptedLaunch(vm);
    case AdoptionPlan::kNothingRuns:
      return RemoveVmTap(r);  // a tap left by a ferryd that died before removing it
    default:
      return Reattach(vm);
  }
}

bool VmService::KeepResumedIncoming(const std::shared_ptr<Vm>& vm) {
  VmRecord& r = vm->rec;
  // A restore that resumed the guest keeps it: an incoming migration (the source has let go) or
  // a hold restore (hold_recovery.cc then consumes the hold).
  const VmOrigin origin = OriginFromJson(r.origin);
  const bool resumable = std::holds_alternative<MigrationOrigin>(origin) ||
                         std::holds_alternative<HoldOrigin>(origin);
  if (!resumable || r.pid == 0) return false;
  auto rt = VmRuntime::Attach(r.pid, r.pid_start_time, AdoptedUid(r.pid), vm->paths, {});
  if (!rt.ok()) return false;
  auto status = qemu::QueryStatus(**rt);
  if (!status.ok() || !status->running) return false;
  r.guest_ready = true;  // it was ready on the source, and runs on here
  spdlog::info("vm {}: its {} had resumed it here before ferryd stopped; kept", r.spec.name,
               LaunchKindOf(origin));
  return true;
}

void VmService::DiscardUnfinished(const std::shared_ptr<Vm>& vm) {
  const VmRecord& r = vm->rec;
  if (r.pid != 0) {
    auto rt = VmRuntime::Attach(r.pid, r.pid_start_time, AdoptedUid(r.pid), vm->paths, {});
    if (rt.ok()) {
      (*rt)->Kill();
      (*rt)->WaitExit(kKillTimeout);
    }
  }
  vm_rows_.Delete(r.spec.name);
  RemoveVmTap(r);  // the launch may have made it before ferryd died
  RemoveAll(vm->paths.dir);
  if (r.ram_owned && !r.ram_path.empty()) ::unlink(r.ram_path.c_str());
  spdlog::warn("vm {}: dropped a {} that ferryd left unfinished{}", r.spec.name,
               LaunchKindOf(OriginFromJson(r.origin)),
               r.pid != 0 ? " (its QEMU, pid " + std::to_string(r.pid) + ", is gone)" : "");
}

void VmService::EndInterruptedLaunch(const std::shared_ptr<Vm>& vm) {
  // Killed, not adopted: the launch that started it (its QMP set-up, its operation) died with
  // the old ferryd, so nothing knows what state this QEMU is in.
  auto process = Process::Adopt(vm->rec.pid, vm->rec.pid_start_time);
  const bool killed = process.ok();
  if (killed) {
    process->Signal(SIGKILL);
    process->WaitExit(kKillTimeout);
  }
  MutexLock lock(vm->mu);
  LaunchInterrupted(*vm, killed);
  Persist(*vm);
  spdlog::warn("vm {}: {}", vm->rec.spec.name, vm->rec.failure);
}

namespace {

// A live snapshot's copy (snapshot/ram_precopy.h) stops the guest and waits for ferryd before its
// last pass; a ferryd that died there left the guest stopped and the copy waiting. Cancelled, the
// copy fails and QEMU resumes the guest it stopped. True when there was such a copy.
bool EndAbandonedSnapshotCopy(VmRuntime& rt, const std::string& name) {
  auto migration = qemu::QueryMigrate(rt);
  if (!migration.ok() || migration->state != qemu::MigrationState::kPreSwitchover) return false;
  spdlog::warn("vm {}: a snapshot's copy that ferryd left waiting had stopped the guest; "
               "cancelled, the guest runs on",
               name);
  if (!qemu::MigrateCancelAndWait(rt, kKillTimeout).ok()) return false;
  qemu::SetMigrationCapability(rt, "pause-before-switchover", false);
  auto status = qemu::QueryStatus(rt);
  if (status.ok() && !status->running) qemu::Cont(rt);
  return true;
}

}  // namespace

void VmService::Reattach(const std::shared_ptr<Vm>& vm) {
  VmRecord& r = vm->rec;
  const std::string name = r.spec.name;
  {
    MutexLock lock(vm->mu);
    ReadoptBegun(*vm);  // exits during re-adoption are applied below, once
  }
  const pid_t old_pid = r.pid;
  auto rt =
      VmRuntime::Attach(r.pid, r.pid_start_time, AdoptedUid(r.pid), vm->paths, CallbacksFor(vm));
  Result<qemu::QmpVmStatus> status = Status::Unavailable("not attached");
  if (rt.ok()) status = qemu::QueryStatus(**rt);
  if (status.ok() && !status->running && EndAbandonedSnapshotCopy(**rt, name)) {
    status = qemu::QueryStatus(**rt);
  }
  MutexLock lock(vm->mu);
  if (!rt.ok()) {
    StopDeferringExits(*vm);
    vm->exit = ProcessExit{};
    ApplyExit(*vm);
    if (r.state == VmState::kFailed) {
      r.failure = "QEMU (pid " + std::to_string(old_pid) +
                  ") ended while ferryd was not running (" + rt.status().message() + ")";
    }
    Persist(*vm);
    spdlog::warn("vm {}: {}", name, r.failure);
    return;
  }
  std::shared_ptr<VmRuntime> runtime = std::move(rt).value();
  if (vm->exit) {  // it died while we attached
    vm->rt = runtime;
    StopDeferringExits(*vm);
    ApplyExit(*vm);
    Persist(*vm);
    return;
  }
  // Not only "paused": a source whose migration completed waits in "postmigrate".
  Readopted(*vm, runtime, status.ok() && !status->running);
  Persist(*vm);
  spdlog::info("vm {}: re-adopted QEMU pid {} ({})", name, r.pid, VmStateName(r.state));
  if (r.spec.network.mode == NetworkMode::kTap) {
    TapDevice tap = TapDevice::ForVm(r.id, r.spec.network.bridge);
    auto bridge = tap.AttachedBridge();
    if (!bridge.ok() || *bridge != tap.bridge()) {
      spdlog::warn("vm {}: its tap {} is {}; the guest is cut off from bridge {}", name, tap.name(),
                   bridge.ok() ? "not on its bridge" : "gone", tap.bridge());
    }
  }
}

void VmService::SweepUnownedQemus() {
  // A QEMU of this ferryd holds files of its VM directory (STATE/vms/NAME) open: it gets them
  // as descriptors, so its command line names no path. Pool QEMUs (".pool-*") are the template
  // service's to sweep.
  const std::string vms_dir = config_.state_dir + "/vms";
  const std::string marker = vms_dir + "/";
  std::set<pid_t> owned;
  for (const auto& [name, vm] : vms_) {
    if (vm->rec.pid != 0) owned.insert(vm->rec.pid);
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string id = entry.path().filename();
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(id);
    auto cmdline = ReadFile(entry.path().string() + "/cmdline");
    if (!cmdline.ok() || cmdline->find("qemu-system") == std::string::npos) continue;
    if (owned.count(pid)) continue;
    const std::string held = OpenFileUnder(pid, vms_dir);
    if (held.rfind(marker, 0) != 0) continue;
    const std::string rest = held.substr(marker.size());
    const std::string dir = marker + rest.substr(0, rest.find('/'));
    if (rest.rfind(".pool-", 0) == 0) continue;
    auto start = ProcessStartTime(pid);
    auto process = start.ok() ? Process::Adopt(pid, *start) : start.status();
    if (!process.ok()) continue;  // ended meanwhile
    process->Signal(SIGKILL);
    process->WaitExit(kKillTimeout);
    spdlog::warn(
        "start-up sweep: killed QEMU pid {} of {}: no VM record owns it (a ferryd that "
        "died while launching it)",
        pid, dir);
  }
}

void VmService::SweepLeftoverTaps() {
  std::vector<VmRecord> records;
  for (const auto& [name, vm] : vms_) records.push_back(vm->rec);
  for (const TapLeftover& tap : FindTapLeftovers(TapDevice::ListTunLinks(), records, tap_owner_)) {
    Status removed = TapDevice(tap.name, "").Remove();
    if (!removed.ok()) {
      spdlog::warn("start-up sweep: {}", removed.message());
      continue;
    }
    spdlog::warn("start-up sweep: removed tap {}: {}", tap.name, tap.why);
  }
}

}  // namespace ferry::vm

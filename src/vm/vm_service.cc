#include "vm/vm_service.h"

#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>

#include "core/files.h"
#include "qemu/guest_messages.h"
#include "qemu/qmp_commands.h"
#include "vm/arp_probe.h"
#include "vm/host_probe.h"
#include "vm/tap_address.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

using nlohmann::json;

VmService::VmService(ServiceConfig config, registry::Registry& registry)
    : config_(std::move(config)), vm_rows_(registry), images_(config_.image_dirs) {}

Result<std::unique_ptr<VmService>> VmService::Open(ServiceConfig config,
                                                   registry::Registry& registry) {
  if (config.state_dir.empty()) return Status::InvalidArgument("no state directory given");
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(config.state_dir, "state directory"));
  FERRY_RETURN_IF_ERROR(MakeDirs(config.state_dir + "/vms", 0700));
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(config.ram_dir, "RAM directory"));
  std::unique_ptr<VmService> svc(new VmService(std::move(config), registry));
  const ServiceConfig& c = svc->config_;
  // Taps carry the state directory in their alias (tap_sweep.h): spelled one way, whatever way
  // ferryd is given it.
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(c.state_dir, ec);
  svc->tap_owner_ = ec ? c.state_dir : canonical.string();
  SetConsoleRingBytes(c.console_max_kib << 10);
  svc->accel_ = qemu::ChooseAccelerator(qemu::ProbeHost());
  spdlog::info("accelerator: {}", svc->accel_.reason);
  // QEMU releases differ in what ferryd must give them (qemu::GuestRamKib). One that cannot
  // be asked is treated as the oldest ferry supports; its launches will say what is wrong.
  auto version = qemu::ProbeQemuVersion(c.qemu_binary, c.state_dir);
  if (version.ok()) {
    svc->qemu_version_ = *version;
    spdlog::info("QEMU: {} version {}", c.qemu_binary, version->ToString());
  } else {
    spdlog::warn("QEMU: cannot tell the version of {} ({}); treating it as 7.2", c.qemu_binary,
                 version.status().message());
  }
  if (!c.qemu_user.empty()) {
    FERRY_ASSIGN_OR_RETURN(QemuUser user, LookUpQemuUser(c.qemu_user));
    FERRY_RETURN_IF_ERROR(CheckUidRangeUnused(c.qemu_uids));
    svc->qemu_uids_ = std::make_unique<QemuUids>(c.qemu_uids, user.gid);
    // /dev/kvm belongs to group kvm; QEMU needs nothing else of the host's groups.
    if (svc->accel_.accelerator == qemu::Accelerator::kKvm) {
      if (const struct group* kvm = ::getgrnam("kvm")) svc->qemu_groups_.push_back(kvm->gr_gid);
    }
  }
  svc->launch_steps_ = std::make_unique<HostLaunchSteps>(
      HostLaunchSteps::Config{c.qemu_binary, c.qemu_start_timeout, svc->tap_owner_,
                              svc->qemu_uids_.get(), svc->qemu_groups_});
  VmService* s = svc.get();
  LaunchHooks hooks;
  // The launcher calls it with vm.mu held, through a std::function the analysis cannot see.
  hooks.persist = [s](Vm& vm) FERRY_NO_THREAD_SAFETY_ANALYSIS { s->Persist(vm); };
  hooks.callbacks_for = [s](const std::shared_ptr<Vm>& vm) { return s->CallbacksFor(vm); };
  hooks.unregister = [s](const std::shared_ptr<Vm>& vm) {
    std::shared_ptr<VmRuntime> rt;
    std::string name;
    {
      MutexLock lock(vm->mu);
      rt.swap(vm->rt);
      name = vm->rec.spec.name;
    }
    rt.reset();
    MutexLock lock(s->mu_);
    s->vms_.erase(name);
    s->vm_rows_.Delete(name);
  };
  hooks.shutting_down = &s->shutting_down_;
  svc->launcher_ =
      std::make_unique<VmLauncher>(VmLauncher::Config{c.qemu_binary, svc->qemu_version_,
                                                      svc->accel_.accelerator, c.ready_timeout},
                                   svc->images_, *svc->launch_steps_, std::move(hooks));
  FERRY_RETURN_IF_ERROR(svc->Readopt());
  return svc;
}

uint64_t VmService::GuestRamKib(const VmRecord& rec) const {
  qemu::LaunchSpec launched;
  launched.qemu_version = qemu_version_;
  launched.memory_mib = rec.spec.memory_mib;
  launched.accelerator = rec.accelerator;
  return qemu::GuestRamKib(launched);
}

void VmService::Shutdown() {
  shutting_down_ = true;
  std::map<std::string, std::shared_ptr<Vm>> vms;
  {
    MutexLock lock(mu_);
    vms = vms_;
  }
  for (auto& [name, vm] : vms) vm->cv.notify_all();
  workers_.JoinAll();
}

VmService::~VmService() {
  Shutdown();
  std::map<std::string, std::shared_ptr<Vm>> vms;
  {
    MutexLock lock(mu_);
    vms = vms_;
  }
  // Runtimes go last: their threads stop, their QEMUs run on.
  for (auto& [name, vm] : vms) {
    std::shared_ptr<VmRuntime> rt;
    {
      MutexLock lock(vm->mu);
      rt.swap(vm->rt);
    }
  }
}

void VmService::InBackground(std::function<void()> work, std::shared_ptr<Operation> op) {
  workers_.Run(std::move(work), std::move(op));
}

void VmService::Persist(Vm& vm) {
  if (vm.deleted) {
    vm.cv.notify_all();
    return;
  }
  Status st = vm_rows_.Update(vm.rec.spec.name, vm.rec);
  if (!st.ok()) spdlog::error("vm {}: cannot record state: {}", vm.rec.spec.name, st.message());
  if (config_.observer) config_.observer->VmPersisted(vm.rec, /*deleted=*/false);
  vm.cv.notify_all();
}

Result<std::shared_ptr<Vm>> VmService::Find(const std::string& name) {
  MutexLock lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) {
    return Status::NotFound("vm " + name + " does not exist; `ferry vm list` shows the VMs");
  }
  return it->second;
}

std::vector<NetworkClaim> VmService::ClaimsLocked() {
  std::vector<NetworkClaim> claims;
  for (const auto& [name, other] : vms_) {
    MutexLock lock(other->mu);
    if (!HasProcess(other->rec.state) && other->rec.state != VmState::kCreating) continue;
    claims.push_back({name, other->rec.spec.network});
  }
  return claims;
}

VmRuntime::Callbacks VmService::CallbacksFor(const std::shared_ptr<Vm>& vm) {
  std::weak_ptr<Vm> weak = vm;
  VmRuntime::Callbacks cb;
  cb.on_exit = [this, weak](const ProcessExit& ex) { OnExit(weak, ex); };
  cb.on_guest_ready = [this, weak] { OnGuestReady(weak); };
  cb.on_qmp_event = [this, weak](const qemu::QmpEvent& ev) { OnQmpEvent(weak, ev.name, ev.data); };
  return cb;
}

void VmService::OnExit(const std::weak_ptr<Vm>& weak, const ProcessExit& ex) {
  auto vm = weak.lock();
  if (!vm) return;
  MutexLock lock(vm->mu);
  if (!QemuExited(*vm, ex)) return;  // the launcher applies it once QEMU is registered
  ApplyExit(*vm);
  Persist(*vm);
  if (config_.observer) config_.observer->QemuExited(vm->rec, ex, vm->shutdown_reason);
}

void VmService::OnGuestReady(const std::weak_ptr<Vm>& weak) {
  auto vm = weak.lock();
  if (!vm) return;
  MutexLock lock(vm->mu);
  if (!GuestReady(*vm)) return;
  spdlog::info("vm {}: guest ready {} ms after QEMU start", vm->rec.spec.name,
               vm->rec.ready_at_ms - vm->rec.started_at_ms);
  Persist(*vm);
}

void VmService::OnQmpEvent(const std::weak_ptr<Vm>& weak, const std::string& event,
                           const json& data) {
  auto vm = weak.lock();
  if (!vm) return;
  MutexLock lock(vm->mu);
  if (event == "SHUTDOWN") {
    vm->shutdown_reason = data.value("reason", "");
  } else if ((event == "STOP" && Paused(*vm)) || (event == "RESUME" && Resumed(*vm))) {
    Persist(*vm);
  }
}

std::shared_ptr<Operation> VmService::BeginOperation(Vm& vm, const std::string& kind) {
  auto op = operations_.Start(kind, vm.rec.spec.name);
  Claim(vm, op->id());
  return op;
}

}  // namespace ferry::vm

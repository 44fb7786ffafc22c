#include "vm/vm_service.h"

#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "core/files.h"
#include "core/ids.h"
#include "core/mac_address.h"
#include "crypto/owner_policy.h"
#include "qemu/guest_messages.h"
#include "qemu/qmp_commands.h"
#include "vm/arp_probe.h"
#include "vm/host_probe.h"
#include "vm/tap_address.h"
#include "vm/vm_admission.h"
#include "vm/vm_policy.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {
constexpr milliseconds kQuitTimeout(5000);
constexpr milliseconds kKillTimeout(10000);
}  // namespace

VmService::VmService(ServiceConfig config)
    : config_(std::move(config)), images_(config_.image_dirs) {}

Result<std::unique_ptr<VmService>> VmService::Open(ServiceConfig config) {
  if (config.state_dir.empty()) return Status::InvalidArgument("no state directory given");
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(config.state_dir, "state directory"));
  FERRY_RETURN_IF_ERROR(MakeDirs(config.state_dir + "/vms", 0700));
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(config.ram_dir, "RAM directory"));
  std::unique_ptr<VmService> svc(new VmService(std::move(config)));
  const ServiceConfig& c = svc->config_;
  // Taps carry the state directory in their alias (tap_sweep.h): spelled one way, whatever way
  // ferryd is given it.
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(c.state_dir, ec);
  svc->tap_owner_ = ec ? c.state_dir : canonical.string();
  FERRY_ASSIGN_OR_RETURN(svc->registry_, Registry::Open(c.state_dir + "/registry.db"));
  SetConsoleRingBytes(c.console_max_kib << 10);
  svc->accel_ = qemu::ChooseAccelerator(qemu::ProbeHost());
  spdlog::info("accelerator: {}", svc->accel_.reason);
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
    s->registry_->DeleteVm(name);
  };
  hooks.shutting_down = &s->shutting_down_;
  svc->launcher_ = std::make_unique<VmLauncher>(
      VmLauncher::Config{c.qemu_binary, svc->accel_.accelerator, c.ready_timeout}, svc->images_,
      *svc->launch_steps_, std::move(hooks));
  FERRY_RETURN_IF_ERROR(svc->Readopt());
  return svc;
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
  Status st = registry_->UpdateVm(vm.rec);
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

Result<std::shared_ptr<Operation>> VmService::Create(const json& spec_json, bool wait_ready) {
  FERRY_ASSIGN_OR_RETURN(VmSpec spec, VmSpec::FromJson(spec_json));
  if (!spec.cloned_from.empty()) {
    // The binding of a clone to its parent's policy is ferry's to make, when it clones.
    return Status::InvalidArgument("vm " + spec.name +
                                   ": cloned_from is set by ferry when it clones a snapshot; "
                                   "remove it from the spec");
  }
  return CreateFrom(std::move(spec), BootLaunch{}, wait_ready);
}

VmRecord VmService::NewRecord(const VmSpec& spec, const LaunchShape& shape, const VmPaths& paths,
                              const std::string& owner) {
  VmRecord r;
  r.spec = spec;
  // A pool QEMU on tap networking already has the tap named after the id it was given.
  r.id = shape.prelaunched && !shape.prelaunched->vm_id.empty() ? shape.prelaunched->vm_id
                                                                : NewId();
  r.state = VmState::kCreating;
  r.accelerator = accel_.accelerator;
  r.mac = shape.mac.empty() ? NewMac() : shape.mac;
  r.ram_owned = shape.ram == RamSource::kNewOwnFile;
  r.ram_path = r.ram_owned ? config_.ram_dir + "/" + r.id + ".ram" : shape.ram_image;
  r.origin = OriginToJson(shape.origin);
  r.dir = paths.dir;
  r.owner = owner;
  if (spec.disk_mib != 0 || !shape.disk_chain.empty()) {
    r.disk_path = paths.dir + "/disk.qcow2";
    r.disk_chain = shape.disk_chain;
  }
  r.created_at_ms = NowUnixMs();
  return r;
}

Result<std::shared_ptr<Operation>> VmService::CreateFrom(VmSpec spec, LaunchPlan plan,
                                                         bool wait_ready) {
  auto image = images_.Find(spec.image);
  if (!image.ok()) return image.status().WithContext("vm " + spec.name);
  const LaunchShape shape = ShapeOf(plan);
  if (shape.new_identity) {
    FERRY_RETURN_IF_ERROR(AdmitTapClone(spec, BridgeAddresses(spec.network.bridge)));
  }
  // A clone keeps its parent's policy, which names the parent (spec.cloned_from).
  FERRY_ASSIGN_OR_RETURN(std::optional<crypto::OwnerPolicy> policy, PolicyOf(spec));

  MutexLock lock(mu_);
  if (vms_.count(spec.name)) {
    return Status::AlreadyExists("vm " + spec.name +
                                 " already exists; choose another name or "
                                 "delete it first");
  }
  if (reserved_names_ && !shape.is_held_vm) FERRY_RETURN_IF_ERROR(reserved_names_(spec.name));
  const VmPaths paths =
      shape.prelaunched ? shape.prelaunched->paths : VmPaths::For(config_.state_dir, spec.name);
  FERRY_RETURN_IF_ERROR(AdmitNewVm(spec, paths, shape.ram == RamSource::kSnapshotImage,
                                   ClaimsLocked(), ProbeCapacity(config_.ram_dir), EphemeralPort));
  if (!shape.mac.empty()) {
    FERRY_RETURN_IF_ERROR(MacAddress::Parse(shape.mac, "the MAC of vm " + spec.name).status());
  }
  auto vm = std::make_shared<Vm>();
  vm->paths = paths;
  std::shared_ptr<Operation> op;
  {
    MutexLock l(vm->mu);
    vm->rec = NewRecord(spec, shape, paths, policy ? policy->owner_fingerprint : "");
    FERRY_RETURN_IF_ERROR(registry_->InsertVm(vm->rec));
    if (config_.observer) config_.observer->VmPersisted(vm->rec, /*deleted=*/false);
    vms_[spec.name] = vm;
    op = BeginOperation(*vm, shape.operation);
  }
  InBackground([this, vm, op, plan = std::move(plan),
                wait_ready] { RunLaunch(vm, op, plan, wait_ready, /*new_vm=*/true); },
               op);
  return op;
}

void VmService::SetNameReservations(NameReservations check) {
  MutexLock lock(mu_);
  reserved_names_ = std::move(check);
}

Status VmService::CheckCloneAddresses(const std::vector<VmSpec>& clones) {
  std::map<std::string, std::vector<const VmSpec*>> by_bridge;
  for (const VmSpec& spec : clones) {
    if (spec.network.mode != NetworkMode::kTap) continue;
    FERRY_RETURN_IF_ERROR(AdmitTapClone(spec, BridgeAddresses(spec.network.bridge)));
    {
      MutexLock lock(mu_);
      FERRY_RETURN_IF_ERROR(CheckPortsUnclaimed(spec, ClaimsLocked()));
    }
    by_bridge[spec.network.bridge].push_back(&spec);
  }
  for (const auto& [bridge, specs] : by_bridge) {
    std::vector<uint32_t> targets;
    for (const VmSpec* spec : specs) {
      FERRY_ASSIGN_OR_RETURN(Ipv4Prefix ip, ParseIpv4Prefix(spec->network.ip));
      targets.push_back(ip.address);
    }
    FERRY_ASSIGN_OR_RETURN(std::vector<ProbeAnswer> answers, ProbeAddresses(bridge, targets));
    for (size_t i = 0; i < answers.size(); ++i) {
      if (answers[i].mac) return AddressInUse(*specs[i], *answers[i].mac);
    }
  }
  return Status::Ok();
}

void VmService::RunLaunch(const std::shared_ptr<Vm>& vm, const std::shared_ptr<Operation>& op,
                          const LaunchPlan& plan, bool wait_ready, bool new_vm) {
  LaunchRollback rollback(vm, *launch_steps_, launcher_->hooks());
  if (new_vm) rollback.VmRegistered();
  Status st = launcher_->Launch(vm, *op, plan, wait_ready, rollback);
  // A launch that stopped short of registering its VM leaves nothing behind; one that failed
  // later (the guest never became ready) leaves the VM as it is.
  if (!st.ok()) rollback.Undo();
  json described;
  {
    MutexLock lock(vm->mu);
    Release(*vm);  // before the operation ends: its waiters may act on the VM at once
    if (st.ok()) described = Describe(*vm);
  }
  if (st.ok()) {
    op->Succeed(described);
  } else {
    op->Fail(st);
  }
}

Result<PrelaunchedQemu> VmService::Prelaunch(const VmSpec& spec, const CloneLaunch& clone,
                                             const VmPaths& paths) {
  return launcher_->Prelaunch(spec, clone, paths);
}

Result<std::shared_ptr<Operation>> VmService::Start(const std::string& name, bool wait_ready) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  MutexLock svc_lock(mu_);
  const std::vector<NetworkClaim> claims = ClaimsLocked();
  std::shared_ptr<Operation> op;
  {
    MutexLock lock(vm->mu);
    FERRY_RETURN_IF_ERROR(CheckStartable(*vm));
    FERRY_RETURN_IF_ERROR(CheckPortsUnclaimed(vm->rec.spec, claims));
    FERRY_RETURN_IF_ERROR(CheckFitsHost(vm->rec.spec, ProbeCapacity(config_.ram_dir)));
    op = BeginOperation(*vm, "start");
  }
  InBackground(
      [this, vm, op, wait_ready] {
        // The runtime of the previous run is dead; release it before starting anew.
        std::shared_ptr<VmRuntime> old;
        {
          MutexLock lock(vm->mu);
          old.swap(vm->rt);
          // A clone that is started again boots from its image with RAM of its own.
          if (!vm->rec.ram_owned) {
            vm->rec.ram_owned = true;
            vm->rec.ram_path = config_.ram_dir + "/" + vm->rec.id + ".ram";
          }
        }
        old.reset();
        RunLaunch(vm, op, BootLaunch{}, wait_ready, /*new_vm=*/false);
      },
      op);
  return op;
}

Result<std::shared_ptr<Operation>> VmService::Stop(const std::string& name, StopOptions options) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<Operation> op;
  {
    MutexLock lock(vm->mu);
    FERRY_RETURN_IF_ERROR(CheckStoppable(*vm));
    op = BeginOperation(*vm, "stop");
    StopBegun(*vm);
    Persist(*vm);
  }
  InBackground([this, vm, op, options] { RunStop(vm, *op, options); }, op);
  return op;
}

std::string VmService::EndQemu(VmRuntime* rt, Operation& op, StopOptions options,
                               const std::string& name) {
  const milliseconds timeout =
      options.timeout.count() > 0 ? options.timeout : config_.graceful_stop_timeout;
  std::string mode = "forced";
  if (rt && !options.force) {
    op.SetPhase("asking the guest to shut down", 20);
    // A paused guest cannot shut itself down.
    (void)qemu::Cont(*rt);
    auto reply = rt->GuestCall(guest::ops::kShutdown, json::object(), std::chrono::seconds(5));
    if (reply.ok() && rt->WaitExit(timeout)) {
      mode = "graceful";
    } else {
      spdlog::warn("vm {}: graceful shutdown did not finish ({}); forcing", name,
                   reply.ok() ? "timeout" : reply.status().message());
    }
  }
  if (rt && !rt->Exited()) {
    op.SetPhase("quitting QEMU", 70);
    (void)qemu::Quit(*rt, std::chrono::seconds(2));
    if (!rt->WaitExit(kQuitTimeout)) {
      rt->Kill();
      rt->WaitExit(kKillTimeout);
    }
  }
  return mode;
}

void VmService::RunStop(const std::shared_ptr<Vm>& vm, Operation& op, StopOptions options) {
  std::shared_ptr<VmRuntime> rt;
  std::string name;
  {
    MutexLock lock(vm->mu);
    rt = vm->rt;
    name = vm->rec.spec.name;
  }
  const std::string mode = EndQemu(rt.get(), op, options, name);
  std::shared_ptr<VmRuntime> old;
  json result;
  {
    MutexLock lock(vm->mu);
    Stopped(*vm, mode, rt && rt->Exited());
    Persist(*vm);
    old.swap(vm->rt);
    Release(*vm);
    result = Describe(*vm);
  }
  old.reset();
  spdlog::info("vm {}: stopped ({})", name, mode);
  op.Succeed(result);
}

Status VmService::Delete(const std::string& name, bool force, const std::string& holder) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    MutexLock lock(vm->mu);
    FERRY_RETURN_IF_ERROR(CheckDeletable(*vm, force, holder));
    DeleteBegun(*vm);
    rt = vm->rt;
  }
  if (rt && !rt->Exited()) {
    rt->Kill();
    rt->WaitExit(kKillTimeout);
  }
  rt.reset();
  MutexLock svc_lock(mu_);
  std::shared_ptr<VmRuntime> old;
  {
    MutexLock lock(vm->mu);
    old.swap(vm->rt);
    Status removed = registry_->DeleteVm(name);
    if (!removed.ok()) {
      DeleteFailed(*vm);
      return Status::FromCode(
          removed.code(), "vm " + name + ": its QEMU is stopped but its record could " +
                              "not be removed (" + removed.message() + "); run the delete again");
    }
    vm->deleted = true;
    if (config_.observer) config_.observer->VmPersisted(vm->rec, /*deleted=*/true);
    if (vm->rec.ram_owned && !vm->rec.ram_path.empty()) ::unlink(vm->rec.ram_path.c_str());
    RemoveVmTap(vm->rec);
    RemoveAll(vm->paths.dir);
    vms_.erase(name);
  }
  spdlog::info("vm {}: deleted", name);
  return Status::Ok();
}

Result<json> VmService::Pause(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    MutexLock lock(vm->mu);
    FERRY_RETURN_IF_ERROR(RefuseBusy(*vm, "paused"));
    VmState s = vm->rec.state;
    if (s != VmState::kRunning && s != VmState::kBooting) {
      return Status::FailedPrecondition("vm " + name + " is " + VmStateName(s) +
                                        "; only a running or booting VM can be paused");
    }
    rt = vm->rt;
  }
  if (!rt) return Status::Unavailable("vm " + name + ": QEMU is not connected");
  Status r = qemu::Stop(*rt);
  if (!r.ok()) return r.WithContext("vm " + name);
  MutexLock lock(vm->mu);
  if (Paused(*vm)) Persist(*vm);
  return Describe(*vm);
}

Result<json> VmService::Resume(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    MutexLock lock(vm->mu);
    // A migration holds its VM until it is settled: resuming the paused source copy then could
    // run the guest twice.
    FERRY_RETURN_IF_ERROR(RefuseBusy(*vm, "resumed"));
    if (vm->rec.state != VmState::kPaused) {
      return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm->rec.state) +
                                        "; only a paused VM can be resumed");
    }
    rt = vm->rt;
  }
  if (!rt) return Status::Unavailable("vm " + name + ": QEMU is not connected");
  Status r = qemu::Cont(*rt);
  if (!r.ok()) return r.WithContext("vm " + name);
  MutexLock lock(vm->mu);
  if (Resumed(*vm)) Persist(*vm);
  return Describe(*vm);
}

Result<json> VmService::SetPolicy(const std::string& name, const std::string& text) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  auto replacement = crypto::ParsePolicy(text, "the replacement policy of vm " + name);
  if (!replacement.ok()) return replacement.status().WithContext("vm " + name);
  MutexLock lock(vm->mu);
  VmRecord& r = vm->rec;
  if (!vm->holder.free()) {
    return Status::FailedPrecondition("vm " + name + " is busy with operation " +
                                      vm->holder.Describe() +
                                      "; replace its policy when that is done");
  }
  FERRY_RETURN_IF_ERROR(crypto::CheckBoundTo(*replacement, r.spec.name, r.spec.cloned_from)
                            .WithContext("vm " + name));
  FERRY_ASSIGN_OR_RETURN(std::optional<crypto::OwnerPolicy> current, PolicyOf(r.spec));
  if (current) {
    FERRY_RETURN_IF_ERROR(crypto::CheckSameOwner(*current, *replacement).WithContext("vm " + name));
  }
  VmRecord updated = r;
  updated.spec.policy = text;
  updated.owner = replacement->owner_fingerprint;
  FERRY_RETURN_IF_ERROR(registry_->UpdateVm(updated).WithContext("vm " + name));
  r = std::move(updated);
  spdlog::info("vm {}: policy replaced (owner {}…, issued at {})", name, replacement->ShortOwner(),
               replacement->issued_at);
  return Describe(*vm);
}

}  // namespace ferry::vm

// VMs created (from a spec, an image or a clone plan) and started: the launch in the background.
#include "core/ids.h"
#include "core/mac_address.h"
#include "crypto/owner_policy.h"
#include "vm/host_probe.h"
#include "vm/tap_address.h"
#include "vm/vm_admission.h"
#include "vm/vm_policy.h"
#include "vm/vm_service.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

using nlohmann::json;

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
    FERRY_RETURN_IF_ERROR(vm_rows_.Insert(vm->rec.spec.name, vm->rec));
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

Result<std::shared_ptr<const AddressProbe>> VmService::CheckCloneAddresses(
    const std::vector<VmSpec>& clones) {
  for (const VmSpec& spec : clones) {
    if (spec.network.mode != NetworkMode::kTap) continue;
    FERRY_RETURN_IF_ERROR(AdmitTapClone(spec, BridgeAddresses(spec.network.bridge)));
    MutexLock lock(mu_);
    FERRY_RETURN_IF_ERROR(CheckPortsUnclaimed(spec, ClaimsLocked()));
  }
  return AddressProbe::Start(clones);
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

Result<PrelaunchedQemu> VmService::PrelaunchSpare(const VmSpec& spec, const VmPaths& paths,
                                                  const std::string& ram_slot_dir,
                                                  const OnSpawned& on_spawned) {
  return launcher_->PrelaunchSpare(spec, paths, ram_slot_dir, on_spawned);
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

}  // namespace ferry::vm

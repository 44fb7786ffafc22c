// A VM stopped, deleted, paused, resumed, or given its owner's policy.
#include "vm/vm_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/files.h"
#include "crypto/owner_policy.h"
#include "qemu/guest_messages.h"
#include "qemu/qmp_commands.h"
#include "vm/tap_address.h"
#include "vm/vm_policy.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {
constexpr milliseconds kQuitTimeout(5000);
constexpr milliseconds kKillTimeout(10000);
}  // namespace

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
    Status removed = vm_rows_.Delete(name);
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
  FERRY_RETURN_IF_ERROR(vm_rows_.Update(name, updated).WithContext("vm " + name));
  r = std::move(updated);
  spdlog::info("vm {}: policy replaced (owner {}…, issued at {})", name, replacement->ShortOwner(),
               replacement->issued_at);
  return Describe(*vm);
}

}  // namespace ferry::vm

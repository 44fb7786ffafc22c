// What other services' long operations borrow of a VM: a lease that holds it (a snapshot, a
// migration), the disk a snapshot's freeze switched it to, and a snapshot's RAM image made
// mappable by clones' QEMUs.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "vm/vm_service.h"
#include "vm/vm_state_machine.h"

namespace ferry::vm {

using nlohmann::json;

Status VmService::ShareRamImage(const std::string& path) {
  if (!qemu_uids_) {
    return ::chmod(path.c_str(), 0400) == 0
               ? Status::Ok()
               : Status::Internal("cannot make RAM image " + path +
                                  " read-only: " + std::strerror(errno));
  }
  UniqueFd image(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!image.valid()) {
    return Status::Internal("cannot open RAM image " + path + ": " + std::strerror(errno));
  }
  return ShareRamImageWithQemus(image.get(), qemu_uids_->group(), path);
}

Result<VmLease> VmService::Lease(const std::string& name, const std::string& op_id) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  MutexLock lock(vm->mu);
  FERRY_RETURN_IF_ERROR(CheckFree(*vm, op_id));
  const VmState s = vm->rec.state;
  if ((s != VmState::kRunning && s != VmState::kPaused && s != VmState::kBooting) || !vm->rt) {
    return Status::FailedPrecondition("vm " + name + " is " + VmStateName(s) +
                                      "; it must be running");
  }
  Claim(*vm, op_id);
  VmLease lease;
  lease.runtime = vm->rt;
  lease.record = vm->rec;
  std::weak_ptr<Vm> weak = vm;
  lease.release = [this, weak](const json& timings) {
    auto held = weak.lock();
    if (!held) return;
    MutexLock l(held->mu);
    Release(*held);
    if (!timings.empty()) {
      held->rec.timings.update(timings);
      Persist(*held);
    }
  };
  return lease;
}

Status VmService::SetDisk(const std::string& name, const std::string& top,
                          const std::vector<std::string>& chain) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  MutexLock lock(vm->mu);
  // In memory whatever the registry says: it is what QEMU writes now.
  vm->rec.disk_path = top;
  vm->rec.disk_chain = chain;
  Status recorded = vm_rows_.Update(vm->rec.spec.name, vm->rec);
  vm->cv.notify_all();
  return recorded.WithContext("vm " + name + ": recording its disk " + top);
}

}  // namespace ferry::vm

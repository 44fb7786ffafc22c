// Templates: a snapshot taken at a VM's ready point, plus a warm pool of QEMUs already started
// with -incoming defer on that snapshot, so a clone from the pool skips QEMU's start-up. Each
// pool QEMU has the device state loaded and is primed (clone_identity_reset.h): its identity, but
// for the name, is made while it waits, so a clone from the pool only resumes and finishes it.
//
// A template is a registry object {snapshot, pool_size, owns_snapshot}. A keeper thread tops
// each pool up to its size in the background; sizes persist, so a restarted ferryd refills its
// pools. Pool QEMUs are not VMs: they run under STATE/vms/.pool-ID/ until a VM takes one, and a
// restarted ferryd kills the ones an earlier ferryd left (they hold no guest yet).
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/operation.h"
#include "core/status.h"
#include "snapshot/snapshot_service.h"
#include "vm/vm_service.h"

namespace ferry::snapshot {

class TemplateService {
 public:
  // Keeps its rows in `registry`, which outlives it.
  TemplateService(vm::VmService& vms, registry::Registry& registry, SnapshotService& snapshots);
  ~TemplateService();  // stops the keeper and kills the QEMUs waiting in pools

  // From an existing snapshot.
  Status CreateFromSnapshot(const std::string& name, const std::string& snapshot);
  // Boots a VM from `spec` (its name is replaced), waits until ready, snapshots it, deletes it.
  Result<std::shared_ptr<Operation>> CreateFromSpec(const std::string& name, nlohmann::json spec);
  Status SetPoolSize(const std::string& name, int size);
  Status Delete(const std::string& name);
  nlohmann::json List();
  Result<nlohmann::json> Show(const std::string& name);

  // A new VM cloned from the template, from its pool when a QEMU is waiting there.
  // `ip`: the VM's address when the template is of a VM on tap networking (required then).
  Result<std::shared_ptr<Operation>> CreateVm(const std::string& vm, const std::string& name,
                                              std::vector<vm::PortForwardSpec> forwards,
                                              const std::string& ip = "");

 private:
  // Metrics and events of a warm pool (ferry_pool_*, pool.refilled).
  static void PoolRefilled(const std::string& name, size_t ready, int size);
  static void CountPoolUse(const std::string& name, bool hit);

  struct Pool {
    std::string snapshot;
    int size = 0;
    std::deque<WarmQemu> ready;
    int starting = 0;
    // The clone that last took a QEMU from this pool: the refill waits until it is done, so a
    // new QEMU starting up does not take the CPU from the clone a user is waiting for.
    std::shared_ptr<Operation> clone_in_flight;
  };
  Result<TemplateRow> Record(const std::string& name);
  void Keep();                // keeper thread
  void KillStalePoolQemus();  // left by an earlier ferryd
  void Discard(WarmQemu& q);
  // Starts, preloads and primes one QEMU for `pool_name` (unlocked: it takes a while).
  Result<WarmQemu> StartPoolQemu(const std::string& pool_name, const std::string& snapshot);

  vm::VmService& vms_;
  TemplateTable rows_;
  SnapshotService& snapshots_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, Pool> pools_;
  std::thread keeper_;
};

}  // namespace ferry::snapshot

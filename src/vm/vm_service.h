// The VM lifecycle verbs: create, start, pause, resume, stop, delete, lease; and re-adoption of
// running QEMUs when ferryd starts. Every change is written to the registry before it is
// reported. Where the parts live:
//
//   vm_service.cc        the verbs, and QEMU's events turned into transitions
//   vm_state_machine.h   one VM's states, holder and exit handling, and every transition
//   vm_launcher.h        launching QEMU for each kind of LaunchPlan (launch_plan.h), rollback
//   vm_admission.h       whether a VM may be created or started here (ports, addresses, room)
//   vm_adoption.cc       re-adoption at start-up and the start-up sweeps
//   vm_views.cc          the JSON views (show, list, host)
//   background_threads.h the threads operations run on
//
// Thread-safety: all public methods may be called from any thread. Lock order: mu_, then a
// VM's Vm::mu (vm_state_machine.h); workers' and the operation log's locks are leaves. No QMP or
// guest call is made while holding either.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/operation.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "qemu/accelerator.h"
#include "qemu/launch_spec.h"
#include "registry/registry.h"
#include "registry/table.h"
#include "vm/address_probe.h"
#include "vm/background_threads.h"
#include "vm/image.h"
#include "vm/launch_plan.h"
#include "vm/qemu_files.h"
#include "vm/qemu_user.h"
#include "vm/vm_admission.h"
#include "vm/vm_launcher.h"
#include "vm/vm_observer.h"
#include "vm/vm_paths.h"
#include "vm/vm_runtime.h"

namespace ferry::vm {

struct ServiceConfig {
  std::string state_dir;                   // durable: registry, VM directories
  std::string ram_dir = "/dev/shm/ferry";  // tmpfs: one RAM file per running VM
  std::vector<std::string> image_dirs;
  std::string qemu_binary = "qemu-system-x86_64";
  std::chrono::milliseconds qemu_start_timeout{15000};
  std::chrono::milliseconds ready_timeout{300000};
  std::chrono::milliseconds graceful_stop_timeout{30000};
  // Every QEMU runs as a uid of its own from `qemu_uids` with this user's group (see
  // qemu_user.h); "" runs QEMU as ferryd's user (unit tests only).
  std::string qemu_user = "ferry-qemu";
  QemuUidRange qemu_uids;
  // console.log is rotated to console.log.1 beyond this size: at most twice it on disk.
  uint64_t console_max_kib = 2048;
  // Told of every saved VM state and QEMU exit (ferryd's events and metrics); may be null.
  // Outlives the service.
  VmObserver* observer = nullptr;
};

struct StopOptions {
  bool force = false;                    // skip the guest's graceful shutdown
  std::chrono::milliseconds timeout{0};  // 0: the configured graceful_stop_timeout
};

// A VM held for a long operation on it (e.g. a snapshot): nothing else may start, stop or delete
// it until the lease is released.
struct VmLease {
  std::shared_ptr<VmRuntime> runtime;
  VmRecord record;
  std::function<void(const nlohmann::json& timings)> release;
};

class VmService {
 public:
  // Keeps its VMs in `registry` (which outlives the service) and re-adopts every QEMU that
  // still runs.
  static Result<std::unique_ptr<VmService>> Open(ServiceConfig config,
                                                 registry::Registry& registry);
  // Ends background operations (joins their threads). Running VMs keep running; a later ferryd
  // re-adopts them. Idempotent; the destructor calls it.
  void Shutdown();
  ~VmService();

  // Validates the spec against the images and the host, registers the VM and boots it in the
  // background. With wait_ready the operation ends when the guest reports ready.
  Result<std::shared_ptr<Operation>> Create(const nlohmann::json& spec, bool wait_ready);
  // A VM from an already validated spec, started the way `plan` says.
  Result<std::shared_ptr<Operation>> CreateFrom(VmSpec spec, LaunchPlan plan, bool wait_ready);
  // Names no new VM may take although no VM has them (a held VM's: the hold is that VM).
  // `check` returns the refusal for a taken name, Ok for a free one; it is asked for every new
  // VM but a hold restore, and must not call back into this service. Null: none reserved.
  using NameReservations = std::function<Status(const std::string& name)>;
  void SetNameReservations(NameReservations check);
  Result<std::shared_ptr<Operation>> Start(const std::string& name, bool wait_ready);
  // Whether new tap clones with these specs (their own addresses) may start: each address in
  // its bridge's subnet and claimed by no VM of this ferryd, checked now (the first refusal, in
  // one line); then the duplicate address probe on the bridges, started now and run beside the
  // clones' start: each clone waits for it before its tap joins the bridge (address_probe.h).
  // Clones on user networking have nothing to check.
  Result<std::shared_ptr<const AddressProbe>> CheckCloneAddresses(
      const std::vector<VmSpec>& clones);
  // Starts a QEMU for a clone that does not exist yet (warm pool). Its callbacks are set when
  // CreateFrom hands it to a VM through a PooledCloneLaunch.
  Result<PrelaunchedQemu> Prelaunch(const VmSpec& spec, const CloneLaunch& clone,
                                    const VmPaths& paths);
  // Starts a spare QEMU (VmLauncher::PrelaunchSpare), for a clone of a snapshot not known yet;
  // `on_spawned` (may be null) learns its pid before it answers QMP.
  Result<PrelaunchedQemu> PrelaunchSpare(const VmSpec& spec, const VmPaths& paths,
                                         const std::string& ram_slot_dir,
                                         const OnSpawned& on_spawned = nullptr);
  // Holds a VM with a running QEMU for operation `op_id`. FailedPrecondition if it is busy (with
  // another operation than `op_id`: the holder may lease again) or has no QEMU.
  Result<VmLease> Lease(const std::string& name, const std::string& op_id);
  // Names of the VMs whose RAM is mapped from `ram_path` (clones of one snapshot).
  std::vector<std::string> VmsMapping(const std::string& ram_path);
  // VMs, in any state, whose disk lies on this frozen image.
  std::vector<std::string> VmsUsingDisk(const std::string& frozen_path);
  // After a snapshot froze the VM's disk: QEMU now writes `top`, which lies on `chain`. The VM
  // holds it from now on; an error says the registry did not record it.
  Status SetDisk(const std::string& name, const std::string& top,
                 const std::vector<std::string>& chain);
  // The node name of the image the VM's data disk writes, as its QEMU says (query-block);
  // nullopt when no QEMU of the VM runs.
  Result<std::optional<std::string>> DiskNode(const std::string& name);
  bool Exists(const std::string& name);
  // True if a registered VM lives in `dir` (a VM taken from the warm pool keeps its directory).
  bool OwnsDir(const std::string& dir);
  // Makes a snapshot's finished RAM image what clones' QEMUs map (ShareRamImageWithQemus); 0400
  // when QEMU runs as ferryd's user.
  Status ShareRamImage(const std::string& path);
  const ServiceConfig& config() const { return config_; }
  // What `--qemu --version` said at start (unknown if it could not be read).
  const qemu::QemuVersion& qemu_version() const { return qemu_version_; }
  // The guest RAM (KiB) QEMU maps for `rec` as this ferryd launches it (qemu::GuestRamKib).
  uint64_t GuestRamKib(const VmRecord& rec) const;
  ImageCatalog& images() { return images_; }
  Result<std::shared_ptr<Operation>> Stop(const std::string& name, StopOptions options);
  // `holder`: the operation that holds the VM's lease and deletes it under that lease (a
  // migration settled at its destination); any other busy VM is refused.
  Status Delete(const std::string& name, bool force, const std::string& holder = "");
  Result<nlohmann::json> Pause(const std::string& name);
  Result<nlohmann::json> Resume(const std::string& name);

  // Replaces a VM's owner policy with `text` (a signed document): it must verify, be bound to the
  // VM, and, when the VM has an owner, be signed by that owner (crypto::CheckSameOwner). A VM
  // created without a policy takes its first owner here. Refused while the VM is busy.
  Result<nlohmann::json> SetPolicy(const std::string& name, const std::string& text);
  // A copy of the VM's record.
  Result<VmRecord> Get(const std::string& name);

  Result<nlohmann::json> Show(const std::string& name);
  nlohmann::json List();
  Result<std::string> Console(const std::string& name, size_t max_bytes);
  // Bytes from the guest's /dev/urandom, through ferry-guest: lets a user check that clones of
  // one snapshot do not share RNG state.
  Result<nlohmann::json> GuestRandom(const std::string& name, int bytes);
  // Makes the guest hold `mib` MiB of random bytes (guest/ballast.h): a test and benchmark aid.
  Result<nlohmann::json> GuestBallast(const std::string& name, uint64_t mib);
  nlohmann::json HostInfo();
  OperationLog& operations() { return operations_; }
  // Runs `work` on a thread joined when the service ends (before VMs are released). If `work`
  // throws, or no thread can be started, `op` (when given and still running) fails with that
  // error; ferryd itself carries on.
  void InBackground(std::function<void()> work, std::shared_ptr<Operation> op = nullptr);

 private:
  VmService(ServiceConfig config, registry::Registry& registry);

  // Re-adoption (vm_adoption.cc). These run in Open, before any other thread can see the VMs
  // or reach the service (runtime watchers report only through the VMs' locks), so they read
  // the table and the records without locks: not analysed.
  Status Readopt() FERRY_NO_THREAD_SAFETY_ANALYSIS;
  // One record: dropped, failed, left as it is, or re-attached to its QEMU.
  void ReadoptOne(VmRecord rec) FERRY_NO_THREAD_SAFETY_ANALYSIS;
  // A VM ferryd left in `creating`: an incoming migration that already runs is kept; anything
  // else is discarded, its QEMU (if any) killed.
  bool KeepResumedIncoming(const std::shared_ptr<Vm>& vm) FERRY_NO_THREAD_SAFETY_ANALYSIS;
  void DiscardUnfinished(const std::shared_ptr<Vm>& vm) FERRY_NO_THREAD_SAFETY_ANALYSIS;
  // A record whose QEMU was spawned but whose launch never finished (ferryd died between spawn
  // and QMP): kills that QEMU if it still runs and marks the VM failed, saying so.
  void EndInterruptedLaunch(const std::shared_ptr<Vm>& vm) FERRY_NO_THREAD_SAFETY_ANALYSIS;
  // Attaches to the QEMU of a VM that had one; the VM becomes what its QEMU says, or failed.
  void Reattach(const std::shared_ptr<Vm>& vm) FERRY_NO_THREAD_SAFETY_ANALYSIS;
  // Kills the QEMUs of this state directory that no record owns (spawned by a ferryd that died
  // before recording them), logging each. REQUIRES: Readopt has loaded every record.
  void SweepUnownedQemus() FERRY_NO_THREAD_SAFETY_ANALYSIS;
  // Removes the taps this ferryd made on which no QEMU runs (tap_sweep.h), logging each.
  // REQUIRES: Readopt has re-adopted every VM.
  void SweepLeftoverTaps() FERRY_NO_THREAD_SAFETY_ANALYSIS;
  // The uid a re-adopted QEMU runs as, held again.
  QemuUidLease AdoptedUid(pid_t pid);

  Result<std::shared_ptr<Vm>> Find(const std::string& name);
  // The runtime of a VM whose guest runs (for guest calls); FailedPrecondition otherwise.
  Result<std::shared_ptr<VmRuntime>> RunningGuest(const std::string& name);
  // What the VMs with a QEMU (or being created) claim of the host's network. No Vm::mu may be
  // held: it takes each.
  std::vector<NetworkClaim> ClaimsLocked() FERRY_REQUIRES(mu_);
  // The new VM's record, in `creating`, for `spec` launched by `shape`.
  VmRecord NewRecord(const VmSpec& spec, const LaunchShape& shape, const VmPaths& paths,
                     const std::string& owner);
  // Launches `vm` on this thread, for operation `op`; undoes a failed launch and ends `op`.
  void RunLaunch(const std::shared_ptr<Vm>& vm, const std::shared_ptr<Operation>& op,
                 const LaunchPlan& plan, bool wait_ready, bool new_vm);
  void RunStop(const std::shared_ptr<Vm>& vm, Operation& op, StopOptions options);
  // Ends a VM's QEMU the way a stop asks; returns the stop's mode ("graceful" or "forced").
  std::string EndQemu(VmRuntime* rt, Operation& op, StopOptions options, const std::string& name);
  void OnExit(const std::weak_ptr<Vm>& weak, const ProcessExit& exit);
  void OnGuestReady(const std::weak_ptr<Vm>& weak);
  void OnQmpEvent(const std::weak_ptr<Vm>& weak, const std::string& event,
                  const nlohmann::json& data);
  VmRuntime::Callbacks CallbacksFor(const std::shared_ptr<Vm>& vm);
  void Persist(Vm& vm) FERRY_REQUIRES(vm.mu);
  // The JSON `vm show` prints (vm_views.cc).
  nlohmann::json Describe(Vm& vm) FERRY_REQUIRES(vm.mu);
  // Starts operation `kind` on `vm` and makes it the VM's holder.
  std::shared_ptr<Operation> BeginOperation(Vm& vm, const std::string& kind) FERRY_REQUIRES(vm.mu);

  ServiceConfig config_;
  registry::Table<VmRecord> vm_rows_;
  ImageCatalog images_;
  qemu::AcceleratorChoice accel_;
  qemu::QemuVersion qemu_version_;
  // The uids QEMUs run as; unset when config_.qemu_user is "" (QEMU runs as ferryd).
  std::unique_ptr<QemuUids> qemu_uids_;
  std::vector<gid_t> qemu_groups_;  // supplementary groups of every QEMU (kvm's, under KVM)
  std::string tap_owner_;           // the canonical state directory, as tap aliases name it
  std::unique_ptr<HostLaunchSteps> launch_steps_;
  std::unique_ptr<VmLauncher> launcher_;
  OperationLog operations_;

  // Lock order: mu_ first, then a VM's Vm::mu.
  Mutex mu_;
  std::map<std::string, std::shared_ptr<Vm>> vms_ FERRY_GUARDED_BY(mu_);
  NameReservations reserved_names_ FERRY_GUARDED_BY(mu_);
  std::atomic<bool> shutting_down_{false};

  BackgroundThreads workers_;
};

}  // namespace ferry::vm

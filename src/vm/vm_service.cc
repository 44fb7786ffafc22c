#include "vm/vm_service.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/files.h"
#include "core/guarded_thread.h"
#include "core/guid.h"
#include "core/ids.h"
#include "core/mac_address.h"
#include "crypto/owner_policy.h"
#include "qemu/guest_messages.h"
#include "qemu/launch_spec.h"
#include "vm/console_ring.h"
#include "vm/host_probe.h"
#include "vm/qemu_user.h"
#include "vm/tap_device.h"
#include "vm/tap_sweep.h"
#include "vm/vm_disk.h"
#include "vm/vm_origin.h"
#include "vm/vm_paths.h"
#include "vm/vm_policy.h"
#include "vm/vm_runtime.h"
#include "vm/vm_spec.h"

namespace ferry::vm {

using nlohmann::json;
using std::chrono::milliseconds;

namespace {
constexpr milliseconds kQuitTimeout(5000);
constexpr milliseconds kKillTimeout(10000);
}  // namespace

// One VM. `mu` guards everything here; `busy` marks the operation that owns the lifecycle
// (create, start, stop), so two such operations never interleave.
struct Vm {
  std::mutex mu;
  std::condition_variable cv;  // signalled on every state change
  VmRecord rec;
  VmPaths paths;
  std::shared_ptr<VmRuntime> rt;
  std::string busy;                 // id of the lifecycle operation in progress, or ""
  bool launching = false;           // QEMU being started; exits are handled by the launcher
  bool exit_expected = false;       // a stop or forced delete is ending QEMU
  std::string shutdown_reason;      // from QEMU's SHUTDOWN event, if one came
  std::optional<ProcessExit> exit;  // QEMU's exit, once it happened
  // Its record is gone from the registry: a late event (QEMU's exit after a forced delete) has
  // nothing left to record.
  bool deleted = false;
};

VmService::VmService(ServiceConfig config)
    : config_(std::move(config)), images_(config_.image_dirs) {}

Result<std::unique_ptr<VmService>> VmService::Open(ServiceConfig config) {
  if (config.state_dir.empty()) return Status::InvalidArgument("no state directory given");
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(config.state_dir, "state directory"));
  FERRY_RETURN_IF_ERROR(MakeDirs(config.state_dir + "/vms", 0700));
  FERRY_RETURN_IF_ERROR(EnsurePrivateDir(config.ram_dir, "RAM directory"));
  std::unique_ptr<VmService> svc(new VmService(std::move(config)));
  // Taps carry the state directory in their alias (tap_sweep.h): spelled one way, whatever way
  // ferryd is given it.
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(svc->config_.state_dir, ec);
  svc->tap_owner_ = ec ? svc->config_.state_dir : canonical.string();
  FERRY_ASSIGN_OR_RETURN(svc->registry_, Registry::Open(svc->config_.state_dir + "/registry.db"));
  SetConsoleRingBytes(svc->config_.console_max_kib << 10);
  svc->accel_ = qemu::ChooseAccelerator(qemu::ProbeHost());
  spdlog::info("accelerator: {}", svc->accel_.reason);
  if (!svc->config_.qemu_user.empty()) {
    FERRY_ASSIGN_OR_RETURN(QemuUser user, LookUpQemuUser(svc->config_.qemu_user));
    FERRY_RETURN_IF_ERROR(CheckUidRangeUnused(svc->config_.qemu_uids));
    svc->qemu_uids_ = std::make_unique<QemuUids>(svc->config_.qemu_uids, user.gid);
    // /dev/kvm belongs to group kvm; QEMU needs nothing else of the host's groups.
    if (svc->accel_.accelerator == qemu::Accelerator::kKvm) {
      if (const struct group* kvm = ::getgrnam("kvm")) svc->qemu_groups_.push_back(kvm->gr_gid);
    }
  }
  FERRY_RETURN_IF_ERROR(svc->Readopt());
  return svc;
}

void VmService::Shutdown() {
  shutting_down_ = true;
  std::map<std::string, std::shared_ptr<Vm>> vms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    vms = vms_;
  }
  for (auto& [name, vm] : vms) vm->cv.notify_all();
  std::list<Worker> workers;
  {
    std::lock_guard<std::mutex> lock(workers_mu_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.thread.join();
}

VmService::~VmService() {
  Shutdown();
  std::map<std::string, std::shared_ptr<Vm>> vms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    vms = vms_;
  }
  // Runtimes go last: their threads stop, their QEMUs run on.
  for (auto& [name, vm] : vms) {
    std::shared_ptr<VmRuntime> rt;
    {
      std::lock_guard<std::mutex> lock(vm->mu);
      rt.swap(vm->rt);
    }
  }
}

void VmService::InBackground(std::function<void()> work, std::shared_ptr<Operation> op) {
  std::lock_guard<std::mutex> lock(workers_mu_);
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (*it->done) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  // What went wrong ends the operation it was for, if it is still running; never ferryd.
  auto fail_op = [op](const Status& why) {
    if (op && op->state() == OperationState::kRunning) op->Fail(why);
  };
  const std::string what = op ? "operation " + op->id() : std::string("background work");
  auto thread = StartGuardedThread(
      what,
      [work = std::move(work), done] {
        // Marked done however the work ends, so the thread is joined and reaped.
        struct MarkDone {
          std::atomic<bool>& done;
          ~MarkDone() { done = true; }
        } mark{*done};
        work();
      },
      fail_op);
  if (!thread.ok()) {
    spdlog::error("{}", thread.status().message());
    fail_op(thread.status());
    return;
  }
  workers_.push_back({std::move(thread).value(), done});
}

void VmService::Persist(Vm& vm) {
  if (vm.deleted) {
    vm.cv.notify_all();
    return;
  }
  Status st = registry_->UpdateVm(vm.rec);
  if (!st.ok()) spdlog::error("vm {}: cannot record state: {}", vm.rec.spec.name, st.message());
  vm.cv.notify_all();
}

Result<std::shared_ptr<Vm>> VmService::Find(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = vms_.find(name);
  if (it == vms_.end()) {
    return Status::NotFound("vm " + name + " does not exist; `ferry vm list` shows the VMs");
  }
  return it->second;
}

VmRuntime::Callbacks VmService::CallbacksFor(const std::shared_ptr<Vm>& vm) {
  std::weak_ptr<Vm> weak = vm;
  VmRuntime::Callbacks cb;
  cb.on_exit = [this, weak](const ProcessExit& ex) { OnExit(weak, ex); };
  cb.on_guest_ready = [this, weak] { OnGuestReady(weak); };
  cb.on_qmp_event = [this, weak](const qemu::QmpEvent& ev) { OnQmpEvent(weak, ev.name, ev.data); };
  return cb;
}

// A clone resumes with its parent's static address; two VMs would then answer for it.
static Status RefuseTapClone(const VmSpec& spec) {
  if (spec.network.mode != NetworkMode::kTap) return Status::Ok();
  return Status::FailedPrecondition("vm " + spec.name + ": cloning a VM on tap networking is " +
                                    "not supported yet (the clone would take its parent's " +
                                    "address " + spec.network.ip + ")");
}

// A tap VM's tap lives as long as its QEMU: removed once no QEMU of the VM runs. Idempotent.
static void RemoveTap(const VmRecord& r) {
  if (r.spec.network.mode != NetworkMode::kTap) return;
  Status st = TapDevice::ForVm(r.id, r.spec.network.bridge).Remove();
  if (!st.ok()) spdlog::warn("vm {}: {}", r.spec.name, st.message());
}

// Decides what QEMU's exit means for the VM. REQUIRES: vm.mu held, vm.exit set.
static void ApplyExit(Vm& vm) {
  VmRecord& r = vm.rec;
  const ProcessExit& ex = *vm.exit;
  // QEMU exits 0 after a guest power-off; an unknown status (re-adopted QEMU) is taken as that.
  const bool guest_powered_off =
      vm.shutdown_reason == "guest-shutdown" && !(ex.known && (ex.signaled || ex.code != 0));
  if (vm.exit_expected || guest_powered_off) {
    r.state = VmState::kStopped;
    if (!vm.exit_expected) r.stop_mode = "guest";
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
  // The guest's memory died with it: give the tmpfs pages back (a clone's RAM file is its
  // snapshot's, which stays).
  if (r.ram_owned && !r.ram_path.empty()) ::unlink(r.ram_path.c_str());
  RemoveTap(r);
}

void VmService::OnExit(const std::weak_ptr<Vm>& weak, const ProcessExit& ex) {
  auto vm = weak.lock();
  if (!vm) return;
  std::lock_guard<std::mutex> lock(vm->mu);
  vm->exit = ex;
  if (vm->launching) return;  // the launcher applies it once QEMU is registered
  ApplyExit(*vm);
  Persist(*vm);
}

void VmService::OnGuestReady(const std::weak_ptr<Vm>& weak) {
  auto vm = weak.lock();
  if (!vm) return;
  std::lock_guard<std::mutex> lock(vm->mu);
  if (vm->rec.guest_ready || !HasProcess(vm->rec.state)) return;
  vm->rec.guest_ready = true;
  vm->rec.ready_at_ms = NowUnixMs();
  if (vm->rec.state == VmState::kBooting) vm->rec.state = VmState::kRunning;
  spdlog::info("vm {}: guest ready {} ms after QEMU start", vm->rec.spec.name,
               vm->rec.ready_at_ms - vm->rec.started_at_ms);
  Persist(*vm);
}

void VmService::OnQmpEvent(const std::weak_ptr<Vm>& weak, const std::string& event,
                           const json& data) {
  auto vm = weak.lock();
  if (!vm) return;
  std::lock_guard<std::mutex> lock(vm->mu);
  VmRecord& r = vm->rec;
  if (event == "SHUTDOWN") {
    vm->shutdown_reason = data.value("reason", "");
  } else if (event == "STOP" && (r.state == VmState::kRunning || r.state == VmState::kBooting)) {
    r.state = VmState::kPaused;
    Persist(*vm);
  } else if (event == "RESUME" && r.state == VmState::kPaused) {
    r.state = r.guest_ready ? VmState::kRunning : VmState::kBooting;
    Persist(*vm);
  }
}

Status VmService::CheckPortsUnclaimed(const VmSpec& spec) {
  // REQUIRES: mu_ held. A stopped VM's forwards are not bound, but a VM with a process owns its
  // ports even while QEMU has not bound them yet.
  for (const auto& [name, other] : vms_) {
    if (name == spec.name) continue;
    std::lock_guard<std::mutex> lock(other->mu);
    if (!HasProcess(other->rec.state) && other->rec.state != VmState::kCreating) continue;
    for (const auto& mine : spec.network.forwards) {
      for (const auto& theirs : other->rec.spec.network.forwards) {
        if (mine.host_port == theirs.host_port) {
          return Status::ResourceExhausted("vm " + spec.name + ": host port " +
                                           std::to_string(mine.host_port) + " is used by vm " +
                                           name + "; choose another host port for --forward");
        }
      }
    }
    // Two running VMs on one segment with one address would each get half the traffic.
    const NetworkSpec& mine = spec.network;
    const NetworkSpec& theirs = other->rec.spec.network;
    if (mine.mode == NetworkMode::kTap && theirs.mode == NetworkMode::kTap &&
        mine.bridge == theirs.bridge &&
        mine.ip.substr(0, mine.ip.find('/')) == theirs.ip.substr(0, theirs.ip.find('/'))) {
      return Status::ResourceExhausted("vm " + spec.name + ": address " + mine.ip + " on bridge " +
                                       mine.bridge + " is used by vm " + name +
                                       "; choose another --ip");
    }
  }
  return Status::Ok();
}

std::shared_ptr<Operation> VmService::BeginOperation(const std::shared_ptr<Vm>& vm,
                                                     const std::string& kind) {
  auto op = operations_.Start(kind, vm->rec.spec.name);
  vm->busy = op->id();
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
  return CreateFrom(std::move(spec), LaunchPlan{}, wait_ready);
}

Result<std::shared_ptr<Operation>> VmService::CreateFrom(VmSpec spec, LaunchPlan plan,
                                                         bool wait_ready) {
  auto image = images_.Find(spec.image);
  if (!image.ok()) return image.status().WithContext("vm " + spec.name);
  if (plan.restore && !plan.incoming_migration) FERRY_RETURN_IF_ERROR(RefuseTapClone(spec));
  // A clone keeps its parent's policy, which names the parent (spec.cloned_from).
  FERRY_ASSIGN_OR_RETURN(std::optional<crypto::OwnerPolicy> policy, PolicyOf(spec));

  std::lock_guard<std::mutex> lock(mu_);
  if (vms_.count(spec.name)) {
    return Status::AlreadyExists("vm " + spec.name +
                                 " already exists; choose another name or "
                                 "delete it first");
  }
  VmPaths paths = plan.prelaunched.runtime ? plan.prelaunched.paths
                                           : VmPaths::For(config_.state_dir, spec.name);
  if (paths.qmp_socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Status::InvalidArgument("vm " + spec.name + ": socket path " + paths.qmp_socket +
                                   " is too long for a UNIX socket; use a shorter --state-dir");
  }
  FERRY_RETURN_IF_ERROR(CheckPortsUnclaimed(spec));
  HostCapacity capacity = ProbeCapacity(config_.ram_dir);
  // A clone maps its snapshot's RAM file: it needs no room for a file of its own.
  if (!plan.ram_path.empty()) capacity.ram_dir_free_bytes = UINT64_MAX;
  FERRY_RETURN_IF_ERROR(CheckFitsHost(spec, capacity));
  for (auto& f : spec.network.forwards) {
    if (f.host_port == 0) f.host_port = PickFreePort(spec);
  }

  auto vm = std::make_shared<Vm>();
  vm->paths = paths;
  VmRecord& r = vm->rec;
  r.spec = spec;
  r.id = NewId();
  r.state = VmState::kCreating;
  r.accelerator = qemu::AcceleratorName(accel_.accelerator);
  if (!plan.mac.empty()) {
    FERRY_RETURN_IF_ERROR(MacAddress::Parse(plan.mac, "the MAC of vm " + spec.name).status());
  }
  r.mac = plan.mac.empty() ? NewMac() : plan.mac;
  r.ram_owned = plan.ram_path.empty();
  r.ram_path = r.ram_owned ? config_.ram_dir + "/" + r.id + ".ram" : plan.ram_path;
  r.origin = plan.origin;
  r.dir = paths.dir;
  r.owner = policy ? policy->owner_fingerprint : "";
  if (spec.disk_mib != 0 || !plan.disk_chain.empty()) {
    r.disk_path = paths.dir + "/disk.qcow2";
    r.disk_chain = plan.disk_chain;
  }
  r.created_at_ms = NowUnixMs();
  FERRY_RETURN_IF_ERROR(registry_->InsertVm(r));
  vms_[spec.name] = vm;
  auto op = BeginOperation(vm, plan.incoming_migration ? "migrate-in"
                               : plan.restore          ? "clone"
                                                       : "create");

  InBackground(
      [this, vm, op, plan = std::move(plan), wait_ready] {
        Status st = Launch(vm, *op, plan, wait_ready);
        bool never_ran;
        json described;
        {
          std::lock_guard<std::mutex> l(vm->mu);
          never_ran = vm->rec.state == VmState::kCreating;
          vm->busy.clear();  // before the operation ends: its waiters may act on the VM at once
          if (st.ok()) described = Describe(*vm, false);
        }
        if (st.ok()) return op->Succeed(described);
        if (never_ran) {
          // Nothing ran: leave no trace, as if the request had been refused.
          std::shared_ptr<VmRuntime> rt;
          {
            std::lock_guard<std::mutex> l(vm->mu);
            rt.swap(vm->rt);
          }
          rt.reset();
          std::lock_guard<std::mutex> l(mu_);
          vms_.erase(vm->rec.spec.name);
          registry_->DeleteVm(vm->rec.spec.name);
          RemoveTap(vm->rec);
          RemoveAll(vm->paths.dir);
        }
        op->Fail(st);
      },
      op);
  return op;
}

uint16_t VmService::PickFreePort(const VmSpec& spec) {
  // REQUIRES: mu_ held. Binding port 0 lets the kernel choose; the port is then checked against
  // the other VMs' claims, since a stopped VM's port is not bound but still reserved.
  for (int attempt = 0; attempt < 32; ++attempt) {
    uint16_t port = EphemeralPort();
    VmSpec probe = spec;  // only its name and this one forward matter to the check
    probe.network.forwards = {{port, 1}};
    if (port != 0 && CheckPortsUnclaimed(probe).ok()) return port;
  }
  return 0;
}

Result<VmService::QemuLaunch> VmService::LaunchSpecFor(const VmRecord& r, const VmPaths& paths,
                                                       const LaunchPlan& plan) {
  auto image = images_.Find(r.spec.image);
  if (!image.ok()) return image.status().WithContext("vm " + r.spec.name);
  QemuLaunch out;
  qemu::LaunchSpec& launch = out.spec;
  QemuFilePaths& files = out.files;
  launch.qemu_binary = config_.qemu_binary;
  launch.name = r.spec.name;
  launch.accelerator = accel_.accelerator;
  launch.cpus = r.spec.cpus;
  launch.memory_mib = r.spec.memory_mib;
  if (!r.ram_owned) files.shared_image = r.ram_path;
  files.disk = r.disk_path;
  if (!r.disk_path.empty()) files.disk_chain = r.disk_chain;
  files.kernel = image->kernel;
  files.initrd = image->initrd;
  launch.kernel_cmdline = image->kernel_cmdline;
  const NetworkSpec& net = r.spec.network;
  if (plan.restore && !plan.incoming_migration) {
    FERRY_RETURN_IF_ERROR(RefuseTapClone(r.spec));  // e.g. a warm-pool QEMU
  }
  if (net.mode == NetworkMode::kTap) {
    // The image's init configures eth0 statically from these instead of asking DHCP.
    launch.kernel_cmdline += " ferry.ip=" + net.ip;
    if (!net.gateway.empty()) launch.kernel_cmdline += " ferry.gw=" + net.gateway;
  }
  files.qmp_socket = paths.qmp_socket;
  files.guest_socket = paths.guest_socket;
  files.console_log = paths.console_log;
  qemu::NicSpec nic;
  FERRY_ASSIGN_OR_RETURN(nic.mac, MacAddress::Parse(r.mac, "the MAC of vm " + r.spec.name));
  if (net.mode == NetworkMode::kTap) {
    nic.backend = qemu::NicSpec::Backend::kTap;
    files.tap = TapDevice::NameFor(r.id);
  }
  // A restored guest is reachable only once its identity is new: its forwards are added after.
  if (!plan.restore || plan.incoming_migration) {
    for (const auto& f : r.spec.network.forwards) {
      nic.forwards.push_back({"127.0.0.1", f.host_port, f.guest_port});
    }
  }
  launch.nics.push_back(nic);
  launch.ram_shared = r.ram_owned;
  launch.incoming = static_cast<bool>(plan.restore);
  if (!plan.vmgenid.empty()) {
    FERRY_ASSIGN_OR_RETURN(launch.vmgenid,
                           Guid::Parse(plan.vmgenid, "the VM generation ID of vm " + r.spec.name));
  }
  return out;
}

Result<QemuStart> VmService::PrepareStart(QemuLaunch& launch, UniqueFd ram) {
  QemuStart start;
  if (qemu_uids_) {
    FERRY_ASSIGN_OR_RETURN(start.uid, qemu_uids_->Acquire());
    start.groups = qemu_groups_;
  }
  FERRY_RETURN_IF_ERROR(OpenQemuFiles(launch.files, std::move(ram), launch.spec, start));
  return start;
}

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

QemuUidLease VmService::AdoptedUid(pid_t pid) {
  if (!qemu_uids_) return {};
  auto uid = ProcessUid(pid);
  return uid.ok() ? qemu_uids_->Adopt(*uid) : QemuUidLease{};
}

Result<PrelaunchedQemu> VmService::Prelaunch(const VmSpec& spec, const LaunchPlan& plan,
                                             const VmPaths& paths) {
  VmRecord r;
  r.spec = spec;
  r.mac = plan.mac;
  r.ram_owned = false;
  r.ram_path = plan.ram_path;
  if (spec.disk_mib != 0 || !plan.disk_chain.empty()) r.disk_path = paths.dir + "/disk.qcow2";
  FERRY_ASSIGN_OR_RETURN(QemuLaunch launch, LaunchSpecFor(r, paths, plan));
  FERRY_RETURN_IF_ERROR(MakeDirs(paths.dir, 0700));
  FERRY_RETURN_IF_ERROR(EnsureDisk(r, plan));
  FERRY_ASSIGN_OR_RETURN(QemuStart start, PrepareStart(launch, UniqueFd()));
  PrelaunchedQemu q;
  q.paths = paths;
  q.argv = qemu::BuildCommandLine(launch.spec);
  auto rt = VmRuntime::Launch(q.argv, std::move(start), paths, VmRuntime::Callbacks{},
                              config_.qemu_start_timeout);
  if (!rt.ok()) return rt.status();
  q.runtime = std::move(rt).value();
  return q;
}

Status VmService::Launch(const std::shared_ptr<Vm>& vm, Operation& op, const LaunchPlan& plan,
                         bool wait_ready) {
  std::string name;
  std::string ram_file;
  QemuLaunch launch;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    name = vm->rec.spec.name;
    ram_file = vm->rec.ram_path;
    auto spec = LaunchSpecFor(vm->rec, vm->paths, plan);
    if (!spec.ok()) return spec.status();
    launch = std::move(spec).value();
    vm->launching = true;
    vm->exit.reset();
    vm->exit_expected = false;
    vm->shutdown_reason.clear();
  }
  auto finish_launch = [&] {
    std::lock_guard<std::mutex> lock(vm->mu);
    vm->launching = false;
  };

  op.SetPhase("preparing RAM file", 10);
  const bool ram_owned = launch.spec.ram_shared;
  Status st = plan.prelaunched.runtime ? Status::Ok() : MakeDirs(vm->paths.dir, 0700);
  UniqueFd ram;
  if (st.ok() && ram_owned && !plan.prelaunched.runtime) {
    // The agent owns guest RAM: a sparse file on tmpfs that QEMU maps shared.
    // No QEMU of this VM runs now: a file of that name is a leftover of an earlier run. The
    // new one is made afresh and never through a planted symlink.
    ::unlink(ram_file.c_str());
    auto made = CreateExclusive(ram_file, O_RDWR, 0600);
    if (!made.ok()) {
      st = made.status().WithContext("vm " + name + ": RAM file");
    } else {
      ram.Reset(*made);
      if (::ftruncate(ram.get(), static_cast<off_t>(launch.spec.memory_mib << 20)) != 0) {
        st = Status::ResourceExhausted("vm " + name + ": cannot size RAM file " + ram_file + ": " +
                                       std::strerror(errno));
      }
    }
  }
  if (st.ok() && !plan.prelaunched.runtime) st = EnsureDisk(vm->rec, plan);
  if (!st.ok()) {
    if (ram_owned) ::unlink(ram_file.c_str());
    finish_launch();
    return st;
  }

  // Tap networking: the host end exists, up and on its bridge, before ferryd opens a queue of
  // it for QEMU.
  std::optional<TapDevice> tap;
  std::string tap_alias;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    const VmRecord& r = vm->rec;
    if (r.spec.network.mode == NetworkMode::kTap && !plan.prelaunched.runtime) {
      tap = TapDevice::ForVm(r.id, r.spec.network.bridge);
      tap_alias = TapAlias(tap_owner_, r.id);
    }
  }
  if (tap) {
    op.SetPhase("creating tap " + tap->name(), 20);
    // No QEMU of this VM runs now: a tap of its name is a leftover of an earlier run.
    tap->Remove();
    Status made = tap->Create(tap_alias);
    if (!made.ok()) {
      if (ram_owned) ::unlink(ram_file.c_str());
      finish_launch();
      return made.WithContext("vm " + name);
    }
  }

  op.SetPhase("starting QEMU", 30);
  std::vector<std::string> argv;
  Result<std::unique_ptr<VmRuntime>> rt = Status::Internal("not started");
  std::shared_ptr<VmRuntime> warm = plan.prelaunched.runtime;
  if (warm) {
    // From the warm pool: QEMU already runs, paused, waiting for its device state.
    argv = plan.prelaunched.argv;
    warm->SetCallbacks(CallbacksFor(vm));
  } else {
    // On disk before QMP connects: a ferryd that dies in between finds this QEMU on start-up
    // (Readopt) instead of leaving it running unowned.
    auto record_spawn = [&](pid_t pid, uint64_t start_time) {
      std::lock_guard<std::mutex> lock(vm->mu);
      vm->rec.pid = pid;
      vm->rec.pid_start_time = start_time;
      vm->rec.qemu_argv = argv;
      Persist(*vm);
    };
    auto start = PrepareStart(launch, std::move(ram));
    if (start.ok()) {
      argv = qemu::BuildCommandLine(launch.spec);
      rt = VmRuntime::Launch(argv, std::move(start).value(), vm->paths, CallbacksFor(vm),
                             config_.qemu_start_timeout, record_spawn);
    } else {
      rt = start.status();
    }
  }
  if (!warm && !rt.ok()) {
    {
      std::lock_guard<std::mutex> lock(vm->mu);  // Launch killed the QEMU it recorded
      vm->rec.pid = 0;
      vm->rec.pid_start_time = 0;
      Persist(*vm);
    }
    if (ram_owned) ::unlink(ram_file.c_str());
    if (tap) tap->Remove();
    finish_launch();
    return rt.status().WithContext("vm " + name);
  }
  if (plan.restore) {
    // Restore while the VM is still `creating`: a failure kills this QEMU and the caller drops
    // the VM, so no half-restored clone is ever registered as running.
    std::shared_ptr<VmRuntime> restoring =
        warm ? warm : std::shared_ptr<VmRuntime>(std::move(rt).value());
    {
      std::lock_guard<std::mutex> lock(vm->mu);
      vm->rt = restoring;
      vm->rec.pid = restoring->pid();
      vm->rec.pid_start_time = restoring->start_time();
      vm->rec.qemu_argv = argv;
      // On disk before the restore: a ferryd that dies during it finds this QEMU on start-up
      // and ends it (Readopt), instead of leaving it running unowned.
      Persist(*vm);
    }
    op.SetPhase("restoring", 50);
    auto outcome = plan.restore(*restoring, op);
    Status restored = outcome.status();
    // A migrated VM had its forwards on the command line; a clone gets them once it is new.
    if (restored.ok() && !plan.incoming_migration) {
      std::vector<PortForwardSpec> forwards;
      {
        std::lock_guard<std::mutex> lock(vm->mu);
        forwards = vm->rec.spec.network.forwards;
      }
      for (const auto& f : forwards) {
        auto added = restoring->Qmp(
            "human-monitor-command",
            {{"command-line", "hostfwd_add net0 tcp:127.0.0.1:" + std::to_string(f.host_port) +
                                  "-:" + std::to_string(f.guest_port)}});
        // HMP reports failure as text, not as a QMP error.
        if (!added.ok() || (added->is_string() && !added->get<std::string>().empty())) {
          restored = Status::ResourceExhausted(
              "vm " + name + ": cannot forward host port " + std::to_string(f.host_port) + ": " +
              (added.ok() ? added->get<std::string>() : added.status().message()));
          break;
        }
      }
    }
    if (!restored.ok()) {
      // If QEMU itself died, that is the news: say so, with its last words, not the QMP echo.
      if (auto ex = restoring->WaitExit(milliseconds(500))) {
        std::string words = QemuLastWords(vm->paths);
        for (char& c : words) {
          if (c == '\n') c = ' ';
        }
        // An incoming migration's stream breaking off kills QEMU: then what the restore saw
        // first is the cause, and stays in the message.
        restored = Status::Unavailable(
            "QEMU (pid " + std::to_string(restoring->pid()) + ") " + ex->Describe() +
            " while restoring" + (words.empty() ? "" : "; QEMU said: " + words) +
            (plan.incoming_migration ? "; the migration had seen: " + restored.message() : ""));
      }
      {
        std::lock_guard<std::mutex> lock(vm->mu);
        vm->exit_expected = true;
      }
      restoring->Kill();
      restoring->WaitExit(kKillTimeout);
      finish_launch();
      return restored.WithContext("vm " + name);
    }
    std::lock_guard<std::mutex> lock(vm->mu);
    VmRecord& r = vm->rec;
    r.state = VmState::kRunning;
    r.guest_ready = true;
    r.started_at_ms = NowUnixMs();
    r.ready_at_ms = r.started_at_ms;
    r.timings = outcome->value("timings", json::object());
    r.mac = outcome->value("mac", r.mac);
    vm->launching = false;
    if (vm->exit) ApplyExit(*vm);
    Persist(*vm);
    spdlog::info("vm {}: restored in QEMU pid {}", name, r.pid);
    return Status::Ok();
  }
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    VmRecord& r = vm->rec;
    vm->rt = std::move(rt).value();
    r.pid = vm->rt->pid();
    r.pid_start_time = vm->rt->start_time();
    r.qemu_argv = argv;
    r.state = VmState::kBooting;
    r.guest_ready = false;
    r.started_at_ms = NowUnixMs();
    r.ready_at_ms = 0;
    r.failure.clear();
    r.last_words.clear();
    vm->launching = false;
    if (vm->exit) ApplyExit(*vm);  // QEMU died between its start and now
    Persist(*vm);
    spdlog::info("vm {}: QEMU pid {} started ({})", name, r.pid, r.accelerator);
  }

  op.SetPhase("booting", 60);
  if (wait_ready) {
    std::unique_lock<std::mutex> lock(vm->mu);
    bool ended = vm->cv.wait_for(lock, config_.ready_timeout, [&] {
      return shutting_down_ || vm->rec.guest_ready ||
             (vm->rec.state != VmState::kBooting && vm->rec.state != VmState::kPaused);
    });
    if (vm->rec.state == VmState::kFailed) {
      return Status::Unavailable(
          "vm " + name + " failed while booting: " + vm->rec.failure +
          (vm->rec.last_words.empty() ? "" : "; QEMU said: " + vm->rec.last_words));
    }
    if (!vm->rec.guest_ready) {
      if (shutting_down_) return Status::Unavailable("ferryd is shutting down");
      if (!ended) {
        return Status::DeadlineExceeded("vm " + name + ": the guest did not report ready within " +
                                        std::to_string(config_.ready_timeout.count() / 1000) +
                                        " s; it is still booting, see `ferry vm console " + name +
                                        "`");
      }
      return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm->rec.state) +
                                        " before its guest became ready");
    }
  }
  return Status::Ok();
}

Result<std::shared_ptr<Operation>> VmService::Start(const std::string& name, bool wait_ready) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::lock_guard<std::mutex> svc_lock(mu_);
  std::shared_ptr<Operation> op;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    if (!vm->busy.empty()) {
      return Status::FailedPrecondition("vm " + name + " is busy with operation " + vm->busy +
                                        "; wait for it to finish");
    }
    if (vm->rec.state != VmState::kStopped && vm->rec.state != VmState::kFailed) {
      return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm->rec.state) +
                                        "; only a stopped or failed VM can be started");
    }
    FERRY_RETURN_IF_ERROR(CheckPortsUnclaimed(vm->rec.spec));
    FERRY_RETURN_IF_ERROR(CheckFitsHost(vm->rec.spec, ProbeCapacity(config_.ram_dir)));
    op = BeginOperation(vm, "start");
  }
  InBackground(
      [this, vm, op, wait_ready] {
        // The runtime of the previous run is dead; release it before starting anew.
        std::shared_ptr<VmRuntime> old;
        {
          std::lock_guard<std::mutex> lock(vm->mu);
          old.swap(vm->rt);
        }
        old.reset();
        {
          // A clone that is started again boots from its image with RAM of its own.
          std::lock_guard<std::mutex> lock(vm->mu);
          if (!vm->rec.ram_owned) {
            vm->rec.ram_owned = true;
            vm->rec.ram_path = config_.ram_dir + "/" + vm->rec.id + ".ram";
          }
        }
        Status st = Launch(vm, *op, LaunchPlan{}, wait_ready);
        json described;
        {
          std::lock_guard<std::mutex> lock(vm->mu);
          vm->busy.clear();
          described = Describe(*vm, false);
        }
        if (st.ok()) {
          op->Succeed(described);
        } else {
          op->Fail(st);
        }
      },
      op);
  return op;
}

Result<std::shared_ptr<Operation>> VmService::Stop(const std::string& name, StopOptions options) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<Operation> op;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    const VmRecord& r = vm->rec;
    if (r.state == VmState::kStopped) {
      return Status::FailedPrecondition("vm " + name + " is already stopped; nothing to do");
    }
    if (r.state == VmState::kFailed) {
      return Status::FailedPrecondition("vm " + name + " has failed (" + r.failure +
                                        "); nothing runs to stop: start or delete it");
    }
    if (!vm->busy.empty()) {
      return Status::FailedPrecondition("vm " + name + " is busy with operation " + vm->busy +
                                        "; wait for it to finish");
    }
    op = BeginOperation(vm, "stop");
    vm->rec.state = VmState::kStopping;
    vm->exit_expected = true;
    Persist(*vm);
  }
  InBackground([this, vm, op, options] { RunStop(vm, *op, options); }, op);
  return op;
}

void VmService::RunStop(const std::shared_ptr<Vm>& vm, Operation& op, StopOptions options) {
  std::shared_ptr<VmRuntime> rt;
  std::string name;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    rt = vm->rt;
    name = vm->rec.spec.name;
  }
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
  std::shared_ptr<VmRuntime> old;
  json result;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    if (!rt || !rt->Exited()) {
      // No runtime at all (e.g. re-adoption failed) or an unkillable QEMU: record what we know.
      vm->exit = ProcessExit{};
      ApplyExit(*vm);
    }
    vm->rec.stop_mode = mode;
    vm->rec.state = VmState::kStopped;
    RemoveTap(vm->rec);  // now, not when QEMU's exit is handled: the stop ends with it gone
    Persist(*vm);
    old.swap(vm->rt);
    vm->busy.clear();
    result = Describe(*vm, false);
  }
  old.reset();
  spdlog::info("vm {}: stopped ({})", name, mode);
  op.Succeed(result);
}

Status VmService::Delete(const std::string& name, bool force, const std::string& holder) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    if (!vm->busy.empty() && vm->busy != holder) {
      return Status::FailedPrecondition("vm " + name + " is busy with operation " + vm->busy +
                                        "; wait for it to finish");
    }
    if (HasProcess(vm->rec.state) && !force) {
      return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm->rec.state) +
                                        "; stop it first (ferry vm stop " + name +
                                        ") or delete it with --force");
    }
    vm->busy = "delete";
    vm->exit_expected = true;
    rt = vm->rt;
  }
  if (rt && !rt->Exited()) {
    rt->Kill();
    rt->WaitExit(kKillTimeout);
  }
  rt.reset();
  std::lock_guard<std::mutex> svc_lock(mu_);
  std::shared_ptr<VmRuntime> old;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    old.swap(vm->rt);
    Status removed = registry_->DeleteVm(name);
    if (!removed.ok()) {
      vm->busy.clear();  // the VM stays, and a later delete must be able to try again
      return Status::FromCode(
          removed.code(), "vm " + name + ": its QEMU is stopped but its record could " +
                              "not be removed (" + removed.message() + "); run the delete again");
    }
    vm->deleted = true;
    if (vm->rec.ram_owned && !vm->rec.ram_path.empty()) ::unlink(vm->rec.ram_path.c_str());
    RemoveTap(vm->rec);
    RemoveAll(vm->paths.dir);
    vms_.erase(name);
  }
  spdlog::info("vm {}: deleted", name);
  return Status::Ok();
}

Result<VmLease> VmService::Lease(const std::string& name, const std::string& op_id) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::lock_guard<std::mutex> lock(vm->mu);
  if (!vm->busy.empty() && vm->busy != op_id) {
    return Status::FailedPrecondition("vm " + name + " is busy with operation " + vm->busy +
                                      "; wait for it to finish");
  }
  const VmState s = vm->rec.state;
  if ((s != VmState::kRunning && s != VmState::kPaused && s != VmState::kBooting) || !vm->rt) {
    return Status::FailedPrecondition("vm " + name + " is " + VmStateName(s) +
                                      "; it must be running");
  }
  vm->busy = op_id;
  VmLease lease;
  lease.runtime = vm->rt;
  lease.record = vm->rec;
  std::weak_ptr<Vm> weak = vm;
  lease.release = [this, weak](const json& timings) {
    auto held = weak.lock();
    if (!held) return;
    std::lock_guard<std::mutex> l(held->mu);
    held->busy.clear();
    if (!timings.empty()) {
      held->rec.timings.update(timings);
      Persist(*held);
    }
  };
  return lease;
}

Status VmService::EnsureDisk(const VmRecord& r, const LaunchPlan& plan) {
  if (r.disk_path.empty() || ::access(r.disk_path.c_str(), F_OK) == 0) return Status::Ok();
  // Only a VM's first launch makes its disk: later, a missing disk is lost data, and a new
  // empty disk in its place would hide that.
  if (r.state != VmState::kCreating) {
    return Status::NotFound("vm " + r.spec.name + ": its data disk " + r.disk_path +
                            " is missing; put the disk back, or delete the VM (ferry vm delete " +
                            r.spec.name + ")");
  }
  const std::string qemu_img = QemuImgFor(config_.qemu_binary);
  Status made = plan.disk_chain.empty()
                    ? CreateBlankDisk(qemu_img, r.disk_path, r.spec.disk_mib)
                    : CreateOverlay(qemu_img, r.disk_path, plan.disk_chain.front());
  return made.WithContext("vm " + r.spec.name);
}

std::vector<std::string> VmService::VmsUsingDisk(const std::string& frozen_path) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (auto& [name, vm] : vms_) {
    std::lock_guard<std::mutex> l(vm->mu);
    const auto& chain = vm->rec.disk_chain;
    if (std::find(chain.begin(), chain.end(), frozen_path) != chain.end()) names.push_back(name);
  }
  return names;
}

Status VmService::SetDisk(const std::string& name, const std::string& top,
                          const std::vector<std::string>& chain) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::lock_guard<std::mutex> lock(vm->mu);
  // In memory whatever the registry says: it is what QEMU writes now.
  vm->rec.disk_path = top;
  vm->rec.disk_chain = chain;
  Status recorded = registry_->UpdateVm(vm->rec);
  vm->cv.notify_all();
  return recorded.WithContext("vm " + name + ": recording its disk " + top);
}

Result<std::optional<std::string>> VmService::DiskNode(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    if (HasProcess(vm->rec.state) && vm->rt && !vm->rt->Exited()) rt = vm->rt;
  }
  if (!rt) return std::optional<std::string>();
  auto node = qemu::QueryBlockNodeName(*rt, qemu::kDiskDeviceId);
  if (!node.ok()) return node.status().WithContext("vm " + name);
  return std::optional<std::string>(*node);
}

std::vector<std::string> VmService::VmsMapping(const std::string& ram_path) {
  std::vector<std::string> names;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, vm] : vms_) {
    std::lock_guard<std::mutex> l(vm->mu);
    // A stopped clone maps nothing: started again, it boots with RAM of its own.
    const bool live = HasProcess(vm->rec.state) || vm->rec.state == VmState::kCreating;
    if (live && !vm->rec.ram_owned && vm->rec.ram_path == ram_path) names.push_back(name);
  }
  return names;
}

bool VmService::OwnsDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, vm] : vms_) {
    std::lock_guard<std::mutex> l(vm->mu);
    if (vm->paths.dir == dir) return true;
  }
  return false;
}

bool VmService::Exists(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  return vms_.count(name) > 0;
}

// REQUIRES: vm.mu held.
static Status RefuseBusy(const Vm& vm, const char* what) {
  if (vm.busy.empty()) return Status::Ok();
  return Status::FailedPrecondition(
      "vm " + vm.rec.spec.name + " is busy with operation " + vm.busy + " and cannot be " + what +
      " now; wait for it to finish (ferry operation show " + vm.busy + ")");
}

Result<json> VmService::Pause(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
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
  std::lock_guard<std::mutex> lock(vm->mu);
  if (HasProcess(vm->rec.state) && vm->rec.state != VmState::kStopping) {
    vm->rec.state = VmState::kPaused;
    Persist(*vm);
  }
  return Describe(*vm, false);
}

Result<json> VmService::Resume(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::shared_ptr<VmRuntime> rt;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
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
  std::lock_guard<std::mutex> lock(vm->mu);
  if (vm->rec.state == VmState::kPaused) {
    vm->rec.state = vm->rec.guest_ready ? VmState::kRunning : VmState::kBooting;
    Persist(*vm);
  }
  return Describe(*vm, false);
}

json VmService::Describe(Vm& vm, bool with_guest) {
  // REQUIRES: vm.mu held (with_guest == false) or not held (with_guest == true, see Show).
  const VmRecord& r = vm.rec;
  json j = r.ToJson();
  json summary = {{"name", r.spec.name},
                  {"state", VmStateName(r.state)},
                  {"memory_mib", r.spec.memory_mib},
                  {"accelerator", r.accelerator}};
  j.update(summary);
  const int64_t now = NowUnixMs();
  j["uptime_ms"] = HasProcess(r.state) && r.started_at_ms ? now - r.started_at_ms : 0;
  j["boot_to_ready_ms"] = r.ready_at_ms ? r.ready_at_ms - r.started_at_ms : 0;
  j["paths"] = {{"dir", vm.paths.dir},
                {"qmp_socket", vm.paths.qmp_socket},
                {"guest_socket", vm.paths.guest_socket},
                {"console_log", vm.paths.console_log},
                {"qemu_log", vm.paths.qemu_log},
                {"ram_file", r.ram_path}};
  if (!r.disk_path.empty()) {
    j["paths"]["disk"] = r.disk_path;
    j["paths"]["disk_chain"] = r.disk_chain;
  }
  j["busy_with"] = vm.busy;
  j["policy"] = DescribePolicy(r.spec, r.origin);
  j["owner"] = j["policy"]["owner"];
  if (r.spec.network.mode == NetworkMode::kTap) j["tap"] = TapDevice::NameFor(r.id);
  return j;
}

Result<json> VmService::SetPolicy(const std::string& name, const std::string& text) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  auto replacement = crypto::ParsePolicy(text, "the replacement policy of vm " + name);
  if (!replacement.ok()) return replacement.status().WithContext("vm " + name);
  std::lock_guard<std::mutex> lock(vm->mu);
  VmRecord& r = vm->rec;
  if (!vm->busy.empty()) {
    return Status::FailedPrecondition("vm " + name + " is busy with operation " + vm->busy +
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
  return Describe(*vm, false);
}

Result<VmRecord> VmService::Get(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::lock_guard<std::mutex> lock(vm->mu);
  return vm->rec;
}

Result<json> VmService::Show(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  json j;
  std::shared_ptr<VmRuntime> rt;
  bool ask_guest;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    j = Describe(*vm, false);
    ask_guest = vm->rec.guest_ready && vm->rec.state == VmState::kRunning;
    rt = vm->rt;
  }
  if (ask_guest && rt) {
    auto reply = rt->GuestCall(guest::ops::kIdentity, json::object(), std::chrono::seconds(2));
    auto identity =
        reply.ok() ? qemu::ParseIdentityReply(*reply) : Result<qemu::GuestIdentity>(reply.status());
    if (identity.ok()) {
      j["guest"] = identity->ToJson();
    } else {
      j["guest"] = {{"error", identity.status().message()}};
    }
  }
  return j;
}

json VmService::List() {
  std::vector<std::shared_ptr<Vm>> vms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, vm] : vms_) vms.push_back(vm);
  }
  json out = json::array();
  for (auto& vm : vms) {
    std::lock_guard<std::mutex> lock(vm->mu);
    json d = Describe(*vm, false);
    out.push_back({{"name", d["name"]},
                   {"state", d["state"]},
                   {"memory_mib", d["memory_mib"]},
                   {"cpus", vm->rec.spec.cpus},
                   {"uptime_ms", d["uptime_ms"]},
                   {"accelerator", d["accelerator"]},
                   {"forwards", d["spec"]["network"]["forwards"]},
                   {"failure", vm->rec.failure}});
  }
  return out;
}

Result<std::string> VmService::Console(const std::string& name, size_t max_bytes) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::string path;
  {
    std::lock_guard<std::mutex> lock(vm->mu);
    path = vm->paths.console_log;
  }
  return ConsoleTail(path, max_bytes);
}

Result<std::shared_ptr<VmRuntime>> VmService::RunningGuest(const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(auto vm, Find(name));
  std::lock_guard<std::mutex> lock(vm->mu);
  if (vm->rec.state != VmState::kRunning) {
    return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm->rec.state) +
                                      "; its guest must be running");
  }
  if (!vm->rt) return Status::Unavailable("vm " + name + ": QEMU is not connected");
  return vm->rt;
}

Result<json> VmService::GuestRandom(const std::string& name, int bytes) {
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<VmRuntime> rt, RunningGuest(name));
  auto r = rt->GuestCall(guest::ops::kUrandom, {{"bytes", bytes}}, std::chrono::seconds(5));
  if (!r.ok()) return r.status().WithContext("vm " + name);
  auto random = qemu::ParseRandomReply(*r, bytes > 0 ? static_cast<size_t>(bytes) : 0);
  if (!random.ok()) return random.status().WithContext("vm " + name);
  return json{{"hex", random->hex}};
}

Result<json> VmService::GuestBallast(const std::string& name, uint64_t mib) {
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<VmRuntime> rt, RunningGuest(name));
  // Filling a GiB takes seconds under TCG.
  auto r = rt->GuestCall(guest::ops::kBallast, {{"mib", mib}}, std::chrono::minutes(5));
  if (!r.ok()) return r.status().WithContext("vm " + name);
  auto ballast = qemu::ParseBallastReply(*r, mib);
  if (!ballast.ok()) return ballast.status().WithContext("vm " + name);
  return json{{"mib", ballast->mib}, {"fill_ms", ballast->fill_ms}};
}

json VmService::HostInfo() {
  json images = images_.Names();
  auto cap = ProbeCapacity(config_.ram_dir);
  return {{"accelerator", qemu::AcceleratorName(accel_.accelerator)},
          {"accelerator_reason", accel_.reason},
          {"state_dir", config_.state_dir},
          {"ram_dir", config_.ram_dir},
          {"images", images},
          {"mem_available_mib", cap.mem_available_bytes >> 20},
          {"ram_dir_free_mib", cap.ram_dir_free_bytes >> 20}};
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
               std::holds_alternative<HoldOrigin>(origin) ? "hold restore" : "incoming migration");
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
  registry_->DeleteVm(r.spec.name);
  RemoveTap(r);  // the launch may have made it before ferryd died
  RemoveAll(vm->paths.dir);
  if (r.ram_owned && !r.ram_path.empty()) ::unlink(r.ram_path.c_str());
  const char* what = r.origin.contains("hold")       ? "hold restore"
                     : r.origin.contains("migration") ? "incoming migration"
                     : r.origin.contains("snapshot") ? "clone"
                                                     : "create";
  spdlog::warn("vm {}: dropped a {} that ferryd left unfinished{}", r.spec.name, what,
               r.pid != 0 ? " (its QEMU, pid " + std::to_string(r.pid) + ", is gone)" : "");
}

void VmService::EndInterruptedLaunch(const std::shared_ptr<Vm>& vm) {
  VmRecord& r = vm->rec;
  const std::string pid = std::to_string(r.pid);
  // Killed, not adopted: the launch that started it (its QMP set-up, its operation) died with
  // the old ferryd, so nothing knows what state this QEMU is in.
  auto process = Process::Adopt(r.pid, r.pid_start_time);
  const bool killed = process.ok();
  if (killed) {
    process->Signal(SIGKILL);
    process->WaitExit(kKillTimeout);
  }
  r.state = VmState::kFailed;
  r.failure = "ferryd stopped while it launched this VM's QEMU (pid " + pid + "); " +
              (killed ? "the restarted ferryd killed that QEMU"
                      : "that QEMU had ended before ferryd restarted") +
              "; start the VM again (ferry vm start " + r.spec.name + ")";
  r.guest_ready = false;
  r.pid = 0;
  r.pid_start_time = 0;
  if (r.ram_owned && !r.ram_path.empty()) ::unlink(r.ram_path.c_str());
  RemoveTap(r);
  Persist(*vm);
  spdlog::warn("vm {}: {}", r.spec.name, r.failure);
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

Status VmService::Readopt() {
  FERRY_ASSIGN_OR_RETURN(std::vector<VmRecord> records, registry_->ListVms());
  for (VmRecord& rec : records) {
    auto vm = std::make_shared<Vm>();
    vm->paths =
        rec.dir.empty() ? VmPaths::For(config_.state_dir, rec.spec.name) : VmPaths::ForDir(rec.dir);
    vm->rec = std::move(rec);
    VmRecord& r = vm->rec;
    const std::string name = r.spec.name;
    // A create that ferryd left before QEMU started never happened. A clone or an incoming
    // migration left half-done goes too: a clone that has not served yet still carries its
    // parent's identity, an incoming guest that is not running must not start here (its source
    // runs it or will resume it). Only an incoming guest that already runs here (the source
    // said finish, this host resumed it) is kept.
    const bool restoring = r.state == VmState::kCreating &&
                           (r.origin.contains("migration") || r.origin.contains("snapshot") ||
                            r.origin.contains("hold"));
    if ((r.state == VmState::kCreating && r.pid == 0) || (restoring && !KeepResumedIncoming(vm))) {
      DiscardUnfinished(vm);
      continue;
    }
    vms_[name] = vm;
    if (r.pid != 0 && !restoring && (r.state == VmState::kCreating || !HasProcess(r.state))) {
      EndInterruptedLaunch(vm);
      continue;
    }
    if (!HasProcess(r.state) && r.state != VmState::kCreating) {
      RemoveTap(r);  // no QEMU runs: a tap left by a ferryd that died before removing it
      continue;
    }

    vm->launching = true;  // exits during re-adoption are applied below, once
    vm->exit_expected = r.state == VmState::kStopping;
    const pid_t old_pid = r.pid;
    auto rt =
        VmRuntime::Attach(r.pid, r.pid_start_time, AdoptedUid(r.pid), vm->paths, CallbacksFor(vm));
    Result<qemu::QmpVmStatus> status = Status::Unavailable("not attached");
    if (rt.ok()) status = qemu::QueryStatus(**rt);
    std::lock_guard<std::mutex> lock(vm->mu);
    vm->launching = false;
    if (!rt.ok()) {
      vm->exit = ProcessExit{};
      ApplyExit(*vm);
      if (r.state == VmState::kFailed) {
        r.failure = "QEMU (pid " + std::to_string(old_pid) +
                    ") ended while ferryd was not running (" + rt.status().message() + ")";
      }
      Persist(*vm);
      spdlog::warn("vm {}: {}", name, r.failure);
      continue;
    }
    vm->rt = std::move(rt).value();
    if (vm->exit) {  // it died while we attached
      ApplyExit(*vm);
      Persist(*vm);
      continue;
    }
    // Not only "paused": a source whose migration completed waits in "postmigrate".
    bool paused = status.ok() && !status->running;
    r.state = paused ? VmState::kPaused : (r.guest_ready ? VmState::kRunning : VmState::kBooting);
    Persist(*vm);
    spdlog::info("vm {}: re-adopted QEMU pid {} ({})", name, r.pid, VmStateName(r.state));
    if (r.spec.network.mode == NetworkMode::kTap) {
      TapDevice tap = TapDevice::ForVm(r.id, r.spec.network.bridge);
      auto bridge = tap.AttachedBridge();
      if (!bridge.ok() || *bridge != tap.bridge()) {
        spdlog::warn("vm {}: its tap {} is {}; the guest is cut off from bridge {}", name,
                     tap.name(), bridge.ok() ? "not on its bridge" : "gone", tap.bridge());
      }
    }
  }
  SweepUnownedQemus();
  SweepLeftoverTaps();
  return Status::Ok();
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

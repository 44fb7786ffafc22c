#include "vm/vm_launcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/guid.h"
#include "core/ids.h"
#include "core/mac_address.h"
#include "qemu/guest_messages.h"
#include "qemu/qmp_commands.h"
#include "vm/guest_announce.h"
#include "vm/tap_device.h"
#include "vm/vm_admission.h"

namespace ferry::vm {

using std::chrono::milliseconds;

namespace {
constexpr milliseconds kKillTimeout(10000);
// How long a QEMU that failed a restore is given to show that it died (and why).
constexpr milliseconds kDiedWhileRestoringWait(500);
}  // namespace

LaunchRollback::LaunchRollback(std::shared_ptr<Vm> vm, LaunchSteps& steps, const LaunchHooks& hooks)
    : vm_(std::move(vm)), steps_(steps), hooks_(hooks) {}

void LaunchRollback::Undo() {
  if (committed_) return;
  committed_ = true;  // once
  if (qemu_) {
    {
      MutexLock lock(vm_->mu);
      LaunchAbandoned(*vm_);
    }
    qemu_->Kill();
    qemu_->WaitExit(kKillTimeout);
    qemu_.reset();
  }
  VmRecord record;
  {
    MutexLock lock(vm_->mu);
    if (spawn_recorded_) {
      SpawnUndone(*vm_);
      hooks_.persist(*vm_);
    }
    if (launch_begun_) StopDeferringExits(*vm_);
    record = vm_->rec;
  }
  if (tap_) steps_.RemoveTap(record);
  if (!ram_file_.empty()) steps_.RemoveRamFile(ram_file_);
  if (registered_) {
    // Nothing ran: leave no trace, as if the request had been refused. The directory goes
    // first: once the name is free, a new VM of that name may make its own.
    steps_.RemoveDir(vm_->paths.dir);
    hooks_.unregister(vm_);
  }
}

VmLauncher::VmLauncher(Config config, const ImageCatalog& images, LaunchSteps& steps,
                       LaunchHooks hooks)
    : config_(std::move(config)), images_(images), steps_(steps), hooks_(std::move(hooks)) {}

Result<QemuLaunch> VmLauncher::LaunchSpecFor(const VmRecord& r, const VmPaths& paths,
                                             const LaunchShape& shape) {
  auto image = images_.Find(r.spec.image);
  if (!image.ok()) return image.status().WithContext("vm " + r.spec.name);
  QemuLaunch out;
  qemu::LaunchSpec& launch = out.spec;
  QemuFilePaths& files = out.files;
  launch.qemu_binary = config_.qemu_binary;
  launch.qemu_version = config_.qemu_version;
  launch.name = r.spec.name;
  launch.accelerator = config_.accelerator;
  launch.cpus = r.spec.cpus;
  launch.memory_mib = r.spec.memory_mib;
  if (!r.ram_owned) files.shared_image = r.ram_path;
  files.disk = r.disk_path;
  if (!r.disk_path.empty()) files.disk_chain = r.disk_chain;
  files.kernel = image->kernel;
  files.initrd = image->initrd;
  launch.kernel_cmdline = image->kernel_cmdline;
  const NetworkSpec& net = r.spec.network;
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
  // A clone is reachable only once its identity is new: its forwards are added after.
  if (!shape.new_identity) {
    for (const auto& f : net.forwards)
      nic.forwards.push_back({"127.0.0.1", f.host_port, f.guest_port});
  }
  launch.nics.push_back(nic);
  launch.ram_shared = r.ram_owned;
  launch.incoming = shape.restore != nullptr;
  if (!shape.vmgenid.empty()) {
    FERRY_ASSIGN_OR_RETURN(launch.vmgenid,
                           Guid::Parse(shape.vmgenid, "the VM generation ID of vm " + r.spec.name));
  }
  return out;
}

Status VmLauncher::PrepareFiles(Vm& vm, const LaunchShape& shape, const QemuLaunch& launch,
                                Operation& op, LaunchRollback& rollback, UniqueFd& ram) {
  op.SetPhase("preparing RAM file", 10);
  if (shape.prelaunched) return Status::Ok();  // its QEMU has them all
  VmRecord r;
  {
    MutexLock lock(vm.mu);
    r = vm.rec;
  }
  FERRY_RETURN_IF_ERROR(steps_.MakeDir(vm.paths.dir));
  // A hold restore's kept file (RamSource::kKeptOwnFile) would be opened here, and not marked:
  // a failed launch must not remove the only copy of the guest's memory.
  if (shape.ram == RamSource::kNewOwnFile) {
    // The agent owns guest RAM: a sparse file on tmpfs that QEMU maps shared.
    rollback.RamFileMade(r.ram_path);  // a half-made one goes too
    auto made = steps_.CreateRamFile(r.ram_path, launch.spec.memory_mib << 20);
    if (!made.ok()) return made.status().WithContext("vm " + r.spec.name + ": RAM file");
    ram = std::move(made).value();
  }
  return steps_.EnsureDisk(r, shape.disk_chain);
}

Status VmLauncher::PrepareTap(Vm& vm, const LaunchShape& shape, Operation& op,
                              LaunchRollback& rollback) {
  // Tap networking: the host end exists, up and on its bridge, before ferryd opens a queue of
  // it for QEMU. A clone's is off the bridge until its identity (MAC, address) is new
  // (JoinSegment): until then it is its parent to the network, and would take the parent's
  // frames and answer for its connections. A pooled QEMU has no tap (its pool is refused).
  VmRecord r;
  {
    MutexLock lock(vm.mu);
    r = vm.rec;
  }
  if (r.spec.network.mode != NetworkMode::kTap) return Status::Ok();
  rollback.TapMade();
  if (shape.prelaunched) return Status::Ok();  // it has its own (Prelaunch), off the bridge
  op.SetPhase("creating tap " + TapDevice::NameFor(r.id), 20);
  return steps_.CreateTap(r, /*on_bridge=*/!shape.new_identity).WithContext("vm " + r.spec.name);
}

Result<VmLauncher::Started> VmLauncher::StartQemu(const std::shared_ptr<Vm>& vm,
                                                  const LaunchShape& shape, QemuLaunch& launch,
                                                  UniqueFd ram, LaunchRollback& rollback) {
  if (shape.prelaunched) {
    // From the warm pool: QEMU already runs, paused, waiting for its device state.
    shape.prelaunched->runtime->SetCallbacks(hooks_.callbacks_for(vm));
    return Started{shape.prelaunched->runtime, shape.prelaunched->argv};
  }
  // On disk before QMP connects: a ferryd that dies in between finds this QEMU on start-up
  // (Readopt) instead of leaving it running unowned.
  auto record_spawn = [&](pid_t pid, uint64_t start_time, const std::vector<std::string>& argv) {
    MutexLock lock(vm->mu);
    rollback.SpawnRecorded();
    SpawnRecorded(*vm, pid, start_time, argv);
    hooks_.persist(*vm);
  };
  FERRY_ASSIGN_OR_RETURN(
      SpawnedQemu spawned,
      steps_.SpawnQemu(launch, std::move(ram), vm->paths, hooks_.callbacks_for(vm), record_spawn));
  Started started{std::move(spawned.runtime), std::move(spawned.argv)};
  // A boot's QEMU is committed right away; a restore's is killed if its restore fails.
  if (shape.restore) rollback.QemuHeld(started.runtime);
  return started;
}

Status VmLauncher::AddForwards(Vm& vm, VmRuntime& rt) {
  std::vector<PortForwardSpec> forwards;
  std::string name;
  {
    MutexLock lock(vm.mu);
    forwards = vm.rec.spec.network.forwards;
    name = vm.rec.spec.name;
  }
  for (const auto& f : forwards) {
    auto said = qemu::HumanMonitorCommand(
        rt, "hostfwd_add net0 tcp:127.0.0.1:" + std::to_string(f.host_port) +
                "-:" + std::to_string(f.guest_port));
    // HMP reports failure as text, not as a QMP error.
    if (!said.ok() || !said->empty()) {
      return Status::ResourceExhausted("vm " + name + ": cannot forward host port " +
                                       std::to_string(f.host_port) + ": " +
                                       (said.ok() ? *said : said.status().message()));
    }
  }
  return Status::Ok();
}

Result<nlohmann::json> VmLauncher::JoinSegment(Vm& vm, VmRuntime& rt, Operation& op) {
  VmRecord r;
  {
    MutexLock lock(vm.mu);
    r = vm.rec;
  }
  if (r.spec.network.mode != NetworkMode::kTap) return nlohmann::json();
  op.SetPhase("joining bridge " + r.spec.network.bridge, 90);
  const auto t0 = std::chrono::steady_clock::now();
  FERRY_RETURN_IF_ERROR(steps_.AttachTap(r).WithContext("vm " + r.spec.name));
  const auto t1 = std::chrono::steady_clock::now();
  // The guest tells the segment its MAC for its new address (gratuitous ARP); only then does the
  // clone count as running.
  auto announced = AnnounceAddress(rt, r.spec);
  if (!announced.ok()) {
    return Status::FromCode(announced.status().code(),
                            announced.status().message() + "; the clone was not started");
  }
  auto ms = [](auto a, auto b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  return nlohmann::json{{"attach_ms", ms(t0, t1)},
                        {"announce_ms", ms(t1, std::chrono::steady_clock::now())},
                        {"announced", *announced}};
}

Status VmLauncher::Restore(const std::shared_ptr<Vm>& vm, const LaunchShape& shape, VmRuntime& rt,
                           Operation& op) {
  op.SetPhase("restoring", 50);
  auto outcome = (*shape.restore)(rt, op);
  Status restored = outcome.status();
  // A migrated VM had its forwards on the command line; a clone gets them once it is new.
  if (restored.ok() && shape.new_identity) restored = AddForwards(*vm, rt);
  if (restored.ok() && shape.new_identity) {
    auto joined = JoinSegment(*vm, rt, op);
    restored = joined.status();
    if (joined.ok() && !joined->is_null()) outcome->timings["segment"] = *joined;
  }
  if (restored.ok()) {
    MutexLock lock(vm->mu);
    Restored(*vm, *outcome);
    hooks_.persist(*vm);
    return Status::Ok();
  }
  // If QEMU itself died, that is the news: say so, with its last words, not the QMP echo.
  if (auto ex = rt.WaitExit(kDiedWhileRestoringWait)) {
    std::string words = QemuLastWords(vm->paths);
    for (char& c : words) {
      if (c == '\n') c = ' ';
    }
    // An incoming migration's stream breaking off kills QEMU: then what the restore saw
    // first is the cause, and stays in the message.
    restored =
        Status::Unavailable("QEMU (pid " + std::to_string(rt.pid()) + ") " + ex->Describe() +
                            " while restoring" + (words.empty() ? "" : "; QEMU said: " + words) +
                            (shape.restore_cause ? std::string("; ") + shape.restore_cause +
                                                       " had seen: " + restored.message()
                                                 : ""));
  }
  return restored;
}

Status VmLauncher::WaitReady(Vm& vm) {
  MutexLock lock(vm.mu);
  const std::string& name = vm.rec.spec.name;
  // The predicate runs with vm.mu held (wait_for's contract), which the analysis cannot see.
  bool ended =
      vm.cv.wait_for(lock.unique(), config_.ready_timeout, [&]() FERRY_NO_THREAD_SAFETY_ANALYSIS {
        return *hooks_.shutting_down || vm.rec.guest_ready ||
               (vm.rec.state != VmState::kBooting && vm.rec.state != VmState::kPaused);
      });
  if (vm.rec.state == VmState::kFailed) {
    return Status::Unavailable(
        "vm " + name + " failed while booting: " + vm.rec.failure +
        (vm.rec.last_words.empty() ? "" : "; QEMU said: " + vm.rec.last_words));
  }
  if (vm.rec.guest_ready) return Status::Ok();
  if (*hooks_.shutting_down) return Status::Unavailable("ferryd is shutting down");
  if (!ended) {
    return Status::DeadlineExceeded("vm " + name + ": the guest did not report ready within " +
                                    std::to_string(config_.ready_timeout.count() / 1000) +
                                    " s; it is still booting, see `ferry vm console " + name + "`");
  }
  return Status::FailedPrecondition("vm " + name + " is " + VmStateName(vm.rec.state) +
                                    " before its guest became ready");
}

Status VmLauncher::Launch(const std::shared_ptr<Vm>& vm, Operation& op, const LaunchPlan& plan,
                          bool wait_ready, LaunchRollback& rollback) {
  const LaunchShape shape = ShapeOf(plan);
  if (shape.prelaunched) rollback.QemuHeld(shape.prelaunched->runtime);
  std::string name;
  QemuLaunch launch;
  {
    MutexLock lock(vm->mu);
    name = vm->rec.spec.name;
    FERRY_ASSIGN_OR_RETURN(launch, LaunchSpecFor(vm->rec, vm->paths, shape));
    LaunchBegun(*vm);
    rollback.LaunchBegun();
  }
  UniqueFd ram;
  FERRY_RETURN_IF_ERROR(PrepareFiles(*vm, shape, launch, op, rollback, ram));
  FERRY_RETURN_IF_ERROR(PrepareTap(*vm, shape, op, rollback));

  op.SetPhase("starting QEMU", 30);
  auto started = StartQemu(vm, shape, launch, std::move(ram), rollback);
  if (!started.ok()) return started.status().WithContext("vm " + name);
  const std::shared_ptr<VmRuntime>& rt = started->runtime;
  if (shape.restore) {
    // Restore while the VM is still `creating`: a failure kills this QEMU and the VM is
    // dropped, so no half-restored clone is ever registered as running.
    {
      MutexLock lock(vm->mu);
      RestoreBegun(*vm, rt, started->argv);
      // On disk before the restore: a ferryd that dies during it finds this QEMU on start-up
      // and ends it (Readopt), instead of leaving it running unowned.
      hooks_.persist(*vm);
    }
    FERRY_RETURN_IF_ERROR(Restore(vm, shape, *rt, op).WithContext("vm " + name));
    rollback.Commit();
    spdlog::info("vm {}: restored in QEMU pid {}", name, rt->pid());
    return Status::Ok();
  }
  {
    MutexLock lock(vm->mu);
    Booted(*vm, rt, started->argv);
    hooks_.persist(*vm);
    rollback.Commit();
    spdlog::info("vm {}: QEMU pid {} started ({})", name, vm->rec.pid,
                 qemu::AcceleratorName(vm->rec.accelerator));
  }
  op.SetPhase("booting", 60);
  return wait_ready ? WaitReady(*vm) : Status::Ok();
}

Result<PrelaunchedQemu> VmLauncher::Prelaunch(const VmSpec& spec, const CloneLaunch& clone,
                                              const VmPaths& paths) {
  const LaunchPlan plan = clone;
  const LaunchShape shape = ShapeOf(plan);
  VmRecord r;
  r.spec = spec;
  r.mac = clone.mac;
  r.ram_owned = false;
  r.ram_path = clone.ram_image;
  if (spec.disk_mib != 0 || !clone.disk_chain.empty()) r.disk_path = paths.dir + "/disk.qcow2";
  PrelaunchedQemu q;
  // Tap networking: the tap is the future VM's, named after the id it will have, and stays off
  // the bridge until that clone has its own address (JoinSegment).
  if (spec.network.mode == NetworkMode::kTap) r.id = q.vm_id = NewId();
  FERRY_ASSIGN_OR_RETURN(QemuLaunch launch, LaunchSpecFor(r, paths, shape));
  FERRY_RETURN_IF_ERROR(steps_.MakeDir(paths.dir));
  FERRY_RETURN_IF_ERROR(steps_.EnsureDisk(r, clone.disk_chain));
  q.paths = paths;
  if (!q.vm_id.empty()) FERRY_RETURN_IF_ERROR(steps_.CreateTap(r, /*on_bridge=*/false));
  auto spawned = steps_.SpawnQemu(launch, UniqueFd(), paths, VmRuntime::Callbacks{}, nullptr);
  if (!spawned.ok() && !q.vm_id.empty()) steps_.RemoveTap(r);
  if (!spawned.ok()) return spawned.status();
  q.runtime = std::move(spawned->runtime);
  q.argv = std::move(spawned->argv);
  return q;
}

Result<PrelaunchedQemu> VmLauncher::PrelaunchSpare(const VmSpec& spec, const VmPaths& paths,
                                                   const std::string& ram_slot_dir,
                                                   const OnSpawned& on_spawned) {
  if (spec.network.mode != NetworkMode::kUser || spec.disk_mib != 0) {
    return Status::InvalidArgument("a spare QEMU is for VMs on user networking without a disk");
  }
  // Its MAC and generation ID are placeholders: the clone's device state brings its parent's
  // MAC (then its identity reset a new one), and any fresh GUID is a new generation.
  CloneLaunch clone;
  clone.mac = MacAddress::Random().ToString();
  clone.vmgenid = Guid::Random().ToString();
  const LaunchPlan plan = clone;
  VmRecord r;
  r.spec = spec;
  r.mac = clone.mac;
  r.ram_owned = false;
  FERRY_ASSIGN_OR_RETURN(QemuLaunch launch, LaunchSpecFor(r, paths, ShapeOf(plan)));
  launch.spec.preconfig = true;
  launch.files.shared_image.clear();
  launch.files.ram_slot_dir = ram_slot_dir;
  FERRY_RETURN_IF_ERROR(steps_.MakeDir(paths.dir));
  FERRY_RETURN_IF_ERROR(steps_.MakeDir(ram_slot_dir));
  FERRY_ASSIGN_OR_RETURN(SpawnedQemu spawned, steps_.SpawnQemu(launch, UniqueFd(), paths,
                                                               VmRuntime::Callbacks{}, on_spawned));
  PrelaunchedQemu q;
  q.runtime = std::move(spawned.runtime);
  q.argv = std::move(spawned.argv);
  q.paths = paths;
  q.ram_slot_dir = ram_slot_dir;
  q.ram_slot_fd = launch.spec.ram_slot_fd;
  q.ram_kib = qemu::GuestRamKib(launch.spec);
  return q;
}

}  // namespace ferry::vm

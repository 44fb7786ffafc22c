// Entry clone_boot: how long a clone takes next to a cold boot of the same image, with and
// without the warm pool.
//
//   ferry side:      per run, one plain clone (`ferry clone S --name cN --forward 0:6379 --json`)
//                    and, if this ferry has `ferry template`, one clone from the template's warm
//                    pool (`ferry vm create pN --template T --forward 0:6379 --json`), in
//                    alternating order. Each is timed from spawning the CLI to its exit, then
//                    checked (redis answers PING through its forward) and deleted. The pool is
//                    refilled (untimed) before anything else runs, and so is the spare QEMU a
//                    plain clone takes or leaves (snapshot/spare_qemus.h).
//   comparison side: per run, one bare QEMU boot of the same image and size (ferryd's command
//                    line, see bare_spec.h), timed from spawn to the guest running its init (see
//                    below) and to ready; and one `ferry vm create bN --wait-ready`, timed from
//                    spawning the CLI to its exit. Their order alternates too.
//
// "Running" for a cold boot is measured two ways, both from QEMU's spawn:
//   - to the first guest user-space instruction: the entry samples the vCPU's privilege level
//     (`info registers`, CPL) every 10 ms through QMP; the first CPL=3 is the kernel running its
//     first user process (/init, or a module helper just before it).
//   - to `ferry-guest: starting` on the serial console: printed when /init execs ferry-guest,
//     which is after /init has loaded modules, started redis, taken a DHCP lease and made a host
//     key: close to ready, so the easier comparison.
// "Running" for a clone is command start (just before the CLI is spawned) to the moment ferryd
// saw `cont` return (timings.running_at_monotonic_ns: CLOCK_MONOTONIC, the clock of this
// process's steady_clock). Also shown, as an upper bound: the CLI's wall time minus the identity
// reset that follows `cont` (restore_total_ms - running_ms), which still holds ferryd's work
// after the reset and the CLI's exit.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <thread>

#include "bench/baselines/bare_qemu.h"
#include "bench/baselines/bare_spec.h"
#include "bench/drivers/clone_fixture.h"
#include "bench/drivers/clone_samples.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/files.h"
#include "guest/protocol.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A ferry without spare QEMUs never shows one: this long is waited for nothing.
constexpr milliseconds kSpareTimeout(5000);
constexpr milliseconds kPingTimeout(10000);
constexpr milliseconds kCplSampleEvery(10);

// ferry side
constexpr char kCloneRunningMs[] = "clone_running_ms";
constexpr char kCloneDeviceMs[] = "clone_device_state_ms";
constexpr char kCloneIdentityRest[] = "clone_identity_rest_ms";
constexpr char kCloneIdentityGuest[] = "clone_identity_guest_ms";
constexpr char kCloneToRunningBound[] = "clone_to_running_bound_ms";
constexpr char kPoolToRunningBound[] = "pool_to_running_bound_ms";
constexpr char kCloneToBegun[] = "clone_cli_to_begun_ms";
constexpr char kCloneBegunToRunning[] = "clone_begun_to_running_ms";
constexpr char kPoolToBegun[] = "pool_cli_to_begun_ms";
constexpr char kPoolBegunToRunning[] = "pool_begun_to_running_ms";
constexpr char kPoolIdentityPrimed[] = "pool_identity_primed_in_pool_ms";
constexpr char kPoolRunningMs[] = "pool_running_ms";
// comparison side
constexpr char kBareToUser[] = "bare_spawn_to_user_mode_ms";
constexpr char kBareToStarting[] = "bare_spawn_to_starting_ms";
constexpr char kBareToReady[] = "bare_spawn_to_ready_ms";
constexpr char kCreateReadyCli[] = "create_ready_cli_ms";
constexpr char kFerrydBootToReady[] = "ferryd_boot_to_ready_ms";

// One step of the guest's identity reset (timings.identity_steps_ms), plain clone.
std::string StepKey(const std::string& step) { return "clone_identity_step_" + step + "_ms"; }

class CloneBoot : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {
        "clone_boot",
        "a clone of a ready VM next to a cold boot of the same image, with and without the "
        "warm pool",
        "`ferry clone S --name cN --forward 0:6379 --json` and `ferry vm create pN --template T "
        "--forward 0:6379 --json` (warm pool): CLI spawn to exit (identity reset done); to "
        "running = that minus the identity reset",
        "bare QEMU, ferryd's command line: spawn to first guest user-mode instruction, to "
        "`ferry-guest: starting`, to ready; and `ferry vm create bN --wait-ready`: CLI spawn to "
        "exit",
        {
            Figure("clone: command to running vs cold boot to 1st user-mode instr.",
                   kCloneToRunning, kBareToUser, Goal::MinSpeedup(50)),
            Figure("clone: command to running vs cold boot to `starting`", kCloneToRunning,
                   kBareToStarting, Goal::MinSpeedup(50)),
            Optional(
                Figure("warm-pool clone: command to running vs cold boot to 1st user-mode instr.",
                       kPoolToRunning, kBareToUser, Goal::MinSpeedup(100))),
            Optional(Figure("warm-pool clone: command to running vs cold boot to `starting`",
                            kPoolToRunning, kBareToStarting, Goal::MinSpeedup(100))),
            Figure("clone: command to identity reset done vs `vm create --wait-ready`", kCloneCli,
                   kCreateReadyCli, Goal::MinSpeedup(20)),
            Optional(Figure(
                "warm-pool clone: command to identity reset done vs `vm create --wait-ready`",
                kPoolCli, kCreateReadyCli)),
            Optional(FerrySideFigure("warm pool vs without: command to running", kPoolToRunning,
                                     kCloneToRunning, Goal::None(), Unit::kMillis)),
            Optional(FerrySideFigure("warm pool vs without: command to identity reset done",
                                     kPoolCli, kCloneCli, Goal::None(), Unit::kMillis)),
            Figure("clone: command to running, upper bound (CLI wall - identity reset)",
                   kCloneToRunningBound, ""),
            Optional(Figure("warm-pool clone: command to running, upper bound", kPoolToRunningBound,
                            "")),
            Optional(Figure("clone: CLI spawn to ferryd beginning the clone", kCloneToBegun, "")),
            Optional(
                Figure("clone: ferryd beginning the clone to running", kCloneBegunToRunning, "")),
            Optional(Figure("warm-pool clone: CLI spawn to ferryd beginning the clone",
                            kPoolToBegun, "")),
            Optional(Figure("warm-pool clone: ferryd beginning the clone to running",
                            kPoolBegunToRunning, "")),
            Figure("clone: ferryd restore start to running (running_ms)", kCloneRunningMs, ""),
            Figure("clone: of which device state load (device_state_ms)", kCloneDeviceMs, ""),
            Figure("clone: identity reset (restore_total_ms - running_ms)", kCloneIdentity, ""),
            Figure("clone: outside the restore (CLI wall - restore_total_ms)", kCloneOutside, ""),
            Optional(Figure(" identity step: dhcp", StepKey("dhcp"), "")),
            Optional(Figure(" identity step: ssh_keys", StepKey("ssh_keys"), "")),
            Optional(Figure(" identity step: mac", StepKey("mac"), "")),
            Optional(Figure(" identity step: machine_id", StepKey("machine_id"), "")),
            Optional(Figure(" identity step: hostname", StepKey("hostname"), "")),
            Optional(Figure(" identity step: rng", StepKey("rng"), "")),
            Optional(Figure(" identity step: clock", StepKey("clock"), "")),
            Optional(Figure(" identity reset minus its steps (guest channel reconnect, RPC)",
                            kCloneIdentityRest, "")),
            Optional(Figure(" identity reset as the guest timed it (whole request, steps included)",
                            kCloneIdentityGuest, "")),
            Optional(
                Figure("warm-pool clone: ferryd restore start to running", kPoolRunningMs, "")),
            Optional(Figure("warm-pool clone: identity reset", kPoolIdentity, "")),
            Optional(Figure("warm-pool clone: outside the restore", kPoolOutside, "")),
            Optional(
                Figure("warm-pool QEMU: identity primed while it waited (not in the clone's time)",
                       kPoolIdentityPrimed, "")),
            Figure("cold boot: bare QEMU spawn to ready", "", kBareToReady),
            Figure("cold boot: ferryd boot_to_ready_ms", "", kFerrydBootToReady),
        }};
  }

  Status SetUp(const BenchConfig& config) override {
    config_ = config;
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_RETURN_IF_ERROR(MakeBareQemuDirs(bare_dir_, bare_ram_dir_));
    qemu_version_ = guest_.qemu_version_line;
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config));

    // The snapshot every clone comes from: the default VM at its ready point, as a template is.
    FERRY_ASSIGN_OR_RETURN(json snap,
                           SnapshotFreshVm(*ferryd_, "src", kCloneSnapshot, config.memory_mib,
                                           guest_.guest_port, [&](const BootedVm& src) {
                                             return guest_.CheckSameCommandLine(
                                                 src.show, src.host_port, bare_dir_->path());
                                           }));
    snapshot_note_ = "snapshot: of VM 'src' right after it was ready; pause " +
                     std::to_string(snap.value("pause_ms", 0)) + " ms, " +
                     std::to_string(snap.value("ram_data_bytes", uint64_t{0}) >> 20) +
                     " MiB of RAM data; the source VM is deleted before the runs";
    has_template_ = HasTemplateCommand(*ferryd_);
    if (has_template_) {
      FERRY_RETURN_IF_ERROR(MakeWarmPool(*ferryd_, kCloneTemplate, kCloneSnapshot, template_made_));
    }
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    return trial.side == Side::kFerry ? RunFerry(trial) : RunComparison(trial);
  }

  std::vector<std::string> Notes() const override {
    std::vector<std::string> notes = {
        guest_.AcceleratorNote(),
        guest_.ImageNote() + ", " + std::to_string(config_.memory_mib) + " MiB",
        "qemu: " + (qemu_version_.empty() ? std::string("version unknown") : qemu_version_),
        snapshot_note_,
        "clone, command to identity reset done: wall time of the `ferry clone` / `ferry vm "
        "create --template` CLI process (it returns once the clone runs with its new identity "
        "and its port forward)",
        "clone, command to running: from just before the CLI is spawned to when ferryd saw "
        "`cont` return (timings.running_at_monotonic_ns, CLOCK_MONOTONIC); the upper-bound rows "
        "are the CLI's wall time minus the identity reset after `cont`, which still include "
        "ferryd adding the port forward, recording the VM and the CLI's exit",
        "warm pool: each pool QEMU has the device state loaded and its identity primed (all but "
        "the name: MAC, machine-id, SSH key, DHCP, RNG) while it waits; a clone from it resumes "
        "it and runs finish_identity (hostname, RNG reseed, clock)",
        "cold boot to 1st user-mode instr.: bare QEMU spawn until QMP `info registers` (sampled "
        "every 10 ms) first shows CPL=3, i.e. the kernel has started its first user process",
        "cold boot to `starting`: bare QEMU spawn until `ferry-guest: starting` is on the serial "
        "console; /init prints nothing earlier, and execs ferry-guest only after loading modules, "
        "starting redis, the DHCP lease and the host key, so this point is near ready",
        "cold boot to ready, as the user waits for it: wall time of `ferry vm create bN --memory "
        "M --forward 0:6379 --wait-ready`",
        "every clone was checked to answer redis PING through its forward before it was deleted",
        "ratio = ferry median / comparison median; `Nx less` = comparison median / ferry median",
    };
    if (has_template_) {
      notes.push_back(
          "warm pool: `ferry template create t --from-snapshot s`, `ferry template "
          "pool t --size 1`; each pool clone was checked to come from the pool "
          "(origin.warm_pool), and the pool refilled before the next step");
    } else {
      notes.push_back(
          "warm pool rows skipped: this ferry has no `ferry template` command (its "
          "`ferry --help` lists none); rebuild once it exists");
    }
    return notes;
  }

  void TearDown() override {
    StopAndSweep(ferryd_, template_made_ ? kCloneTemplate : "", {&bare_dir_, &bare_ram_dir_});
  }

 private:
  Status PlainClone(int round, Measurements& m) {
    const std::string name = "c" + std::to_string(round);
    VmsToDelete cleanup(*ferryd_);
    FERRY_ASSIGN_OR_RETURN(const CloneRun c, ClonePinged(*ferryd_, cleanup, kCloneSnapshot, name,
                                                         guest_.guest_port, kPingTimeout));
    RecordCloneSamples(c, kPlainCloneKeys, m);
    m[kCloneToRunningBound] = c.CommandToRunningBoundMs();
    if (c.CommandToBegunMs() > 0) m[kCloneToBegun] = c.CommandToBegunMs();
    if (c.BegunToRunningMs() > 0) m[kCloneBegunToRunning] = c.BegunToRunningMs();
    m["clone_from_spare_qemu"] =
        c.vm.value("timings", json::object()).value("spare_qemu", false) ? 1 : 0;
    m[kCloneRunningMs] = c.Timing("running_ms");
    m[kCloneDeviceMs] = c.Timing("device_state_ms");
    const json steps =
        c.vm.value("timings", json::object()).value("identity_steps_ms", json::object());
    double in_steps = 0;
    for (const auto& [step, ms] : steps.items()) {
      if (!ms.is_number()) continue;
      m[StepKey(step)] = ms.get<double>();
      in_steps += ms.get<double>();
    }
    if (!steps.empty()) m[kCloneIdentityRest] = c.AfterRunningMs() - in_steps;
    if (c.Timing("identity_guest_ms") > 0) m[kCloneIdentityGuest] = c.Timing("identity_guest_ms");
    FERRY_RETURN_IF_ERROR(cleanup.DeleteNow());
    // The spare's refill starts a QEMU: let it finish before anything else is timed.
    WaitSpareReady();
    return Status::Ok();
  }

  // Until a spare QEMU waits under ferryd's state directory (its .spare-ID/pid; no VM runs now,
  // so none of them is a VM's), or kSpareTimeout.
  void WaitSpareReady() {
    const auto deadline = Clock::now() + kSpareTimeout;
    while (Clock::now() < deadline && !Interrupted()) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(ferryd_->state_dir() + "/vms", ec)) {
        if (e.path().filename().string().rfind(".spare-", 0) != 0) continue;
        std::ifstream in(e.path() / "pid");
        pid_t pid = -1;
        if (in >> pid && pid > 0 && ::kill(pid, 0) == 0) return;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  Status PoolClone(int round, Measurements& m) {
    if (!has_template_) return Status::Ok();
    const std::string name = "p" + std::to_string(round);
    VmsToDelete cleanup(*ferryd_);
    FERRY_ASSIGN_OR_RETURN(CloneRun c, PoolClonePinged(*ferryd_, cleanup, kCloneTemplate, name,
                                                       guest_.guest_port, kPingTimeout));
    RecordCloneSamples(c, kPoolCloneKeys, m);
    m[kPoolToRunningBound] = c.CommandToRunningBoundMs();
    if (c.CommandToBegunMs() > 0) m[kPoolToBegun] = c.CommandToBegunMs();
    if (c.BegunToRunningMs() > 0) m[kPoolBegunToRunning] = c.BegunToRunningMs();
    const json primed =
        c.vm.value("timings", json::object()).value("identity_primed_in_pool", json::object());
    if (primed.contains("ms")) m[kPoolIdentityPrimed] = primed.value("ms", 0.0);
    m[kPoolRunningMs] = c.Timing("running_ms");
    FERRY_RETURN_IF_ERROR(cleanup.DeleteNow());
    // The refill starts a QEMU: let it finish before anything else is timed.
    return WaitPoolReady(*ferryd_, kCloneTemplate, 1, kWarmPoolTimeout);
  }

  Result<Measurements> RunFerry(const Trial& trial) {
    Measurements m;
    if (trial.round % 2 == 1) {
      FERRY_RETURN_IF_ERROR(PlainClone(trial.round, m));
      FERRY_RETURN_IF_ERROR(PoolClone(trial.round, m));
    } else {
      FERRY_RETURN_IF_ERROR(PoolClone(trial.round, m));
      FERRY_RETURN_IF_ERROR(PlainClone(trial.round, m));
    }
    return m;
  }

  // Samples the vCPU's privilege level until it is 3 (user mode); returns when first seen.
  Result<Clock::time_point> WaitForUserMode(BareQemu& qemu, milliseconds timeout) {
    static const std::regex kCpl("CPL=([0-3])");
    const auto deadline = qemu.spawned_at() + timeout;
    FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, qemu.Qmp(timeout));
    while (Clock::now() < deadline) {
      if (Interrupted()) return Status::Unavailable("interrupted");
      const auto asked = Clock::now();
      auto regs = qmp->Execute("human-monitor-command", {{"command-line", "info registers"}});
      if (!regs.ok()) return regs.status().WithContext("sampling the guest's CPL");
      std::smatch match;
      const std::string text = regs->is_string() ? regs->get<std::string>() : "";
      if (!std::regex_search(text, match, kCpl)) {
        return Status::Internal("`info registers` shows no CPL: " + text.substr(0, 200));
      }
      // The sample was taken between asking and the reply; count it from when it was asked.
      if (match[1] == "3") return asked;
      std::this_thread::sleep_until(asked + kCplSampleEvery);
    }
    return Status::DeadlineExceeded("the guest ran no user-mode code within " +
                                    std::to_string(timeout.count() / 1000) + " s");
  }

  Status BareBoot(int round, Measurements& m) {
    const std::string name = "bare" + std::to_string(round);
    const std::string dir = bare_dir_->Join(name);
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    Status st;
    {
      FERRY_ASSIGN_OR_RETURN(auto qemu,
                             BareQemu::Launch(guest_.BareSpec(name, dir, bare_ram_dir_->path(),
                                                              config_.memory_mib, port),
                                              dir + "/qemu.log"));
      auto user = WaitForUserMode(*qemu, kVmBootTimeout);
      auto starting =
          user.ok() ? qemu->WaitForConsole(std::string(guest::kStartingMarker), kVmBootTimeout)
                    : Result<Clock::time_point>(user.status());
      auto ready = starting.ok() ? qemu->WaitForConsole(guest_.image.ready_marker, kVmBootTimeout)
                                 : Result<Clock::time_point>(starting.status());
      st = ready.status();
      if (st.ok()) {
        m[kBareToUser] = DurationMs(*user - qemu->spawned_at());
        m[kBareToStarting] = DurationMs(*starting - qemu->spawned_at());
        m[kBareToReady] = DurationMs(*ready - qemu->spawned_at());
      }
    }  // QEMU killed, RAM file removed
    RemoveAll(dir);
    return st.WithContext("bare QEMU " + name);
  }

  Status FerryBoot(int round, Measurements& m) {
    const std::string name = "b" + std::to_string(round);
    VmsToDelete cleanup(*ferryd_);
    cleanup.Add(name);
    FERRY_ASSIGN_OR_RETURN(BootedVm vm,
                           BootVm(*ferryd_, name, config_.memory_mib, guest_.guest_port));
    m[kCreateReadyCli] = vm.cli_ms;
    m[kFerrydBootToReady] = vm.show.value("boot_to_ready_ms", 0.0);
    return cleanup.DeleteNow();
  }

  Result<Measurements> RunComparison(const Trial& trial) {
    Measurements m;
    if (trial.round % 2 == 1) {
      FERRY_RETURN_IF_ERROR(BareBoot(trial.round, m));
      FERRY_RETURN_IF_ERROR(FerryBoot(trial.round, m));
    } else {
      FERRY_RETURN_IF_ERROR(FerryBoot(trial.round, m));
      FERRY_RETURN_IF_ERROR(BareBoot(trial.round, m));
    }
    return m;
  }

  BenchConfig config_;
  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> bare_dir_;
  std::optional<ScratchDir> bare_ram_dir_;
  std::string qemu_version_;
  std::string snapshot_note_;
  bool has_template_ = false;
  bool template_made_ = false;
};

}  // namespace

FERRY_BENCH_ENTRY("clone_boot", CloneBoot);

}  // namespace ferry::bench

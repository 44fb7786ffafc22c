// Entry cold_boot: how long a user waits for a new VM, next to QEMU booting the same guest bare.
//
//   ferry side:      `ferry vm create bN --memory M --forward PORT:6379 --wait-ready`, timed from
//                    spawning the CLI to its exit. ferryd's own boot_to_ready_ms (QEMU started
//                    to guest ready) is recorded too, from `ferry vm show bN --json`.
//   comparison side: qemu-system-x86_64 with the command line ferryd would build (same
//                    BuildCommandLine, kernel, initramfs, cmdline, RAM backend file on
//                    /dev/shm, devices and accelerator), timed from spawn to the guest's ready
//                    line on the serial console. ferry-guest prints that line right before it
//                    sends ferryd its ready event, so both sides stop at the same guest moment.
//
// During the warm-up the entry checks that the bare command line equals ferryd's (from `vm show
// --json`) except for the per-VM name, MAC and port, so the comparison cannot drift silently.
// Both hand QEMU its files as descriptors, opened by vm::OpenQemuFiles in the same order, so the
// descriptor numbers must match too.

#include <chrono>
#include <optional>

#include "bench/baselines/bare_qemu.h"
#include "bench/baselines/bare_spec.h"
#include "bench/drivers/clone_fixture.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/files.h"
#include "qemu/launch_spec.h"

namespace ferry::bench {
namespace {

using std::chrono::milliseconds;

constexpr char kFerryTotal[] = "ferry_create_to_ready";
constexpr char kFerrydBoot[] = "ferryd_boot_to_ready";
constexpr char kBare[] = "bare_spawn_to_ready";
// ferryd's own ready timeout is 300 s; the CLI gets a little more to report it.
constexpr milliseconds kBootTimeout(330000);
constexpr milliseconds kCommandTimeout(60000);

double Millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

class ColdBoot : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {"cold_boot",
            "cold boot of the default VM until its guest is ready (redis answers)",
            "`ferry vm create bN --memory M --forward PORT:6379 --wait-ready`: spawn of the CLI "
            "to its exit",
            "bare qemu-system-x86_64, same command line, no ferryd: spawn to the ready line on the "
            "serial console",
            {
                {"cold boot to ready", kFerryTotal, kBare, Goal::MaxOverheadPercent(5)},
                {"ferryd boot_to_ready_ms", kFerrydBoot, kBare, Goal::None()},
            }};
  }

  Status SetUp(const BenchConfig& config) override {
    config_ = config;
    FERRY_ASSIGN_OR_RETURN(setup_, GuestSetup::Find(config));

    FERRY_RETURN_IF_ERROR(MakeBareQemuDirs(bare_dir_, bare_ram_dir_));
    qemu_version_ = setup_.qemu_version_line;

    auto ferryd = BenchFerryd::Start(config);
    if (!ferryd.ok()) return ferryd.status();
    ferryd_ = std::move(ferryd).value();
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    return trial.side == Side::kFerry ? RunFerry(trial) : RunBare(trial);
  }

  std::vector<std::string> Notes() const override {
    return {
        setup_.AcceleratorNote(),
        setup_.ImageNote() + "; " + std::to_string(config_.memory_mib) + " MiB",
        "qemu: " + (qemu_version_.empty() ? std::string("version unknown") : qemu_version_),
        "command lines: bare QEMU's equals ferryd's up to per-VM name, MAC and port, the "
        "descriptor numbers of its files included (checked in the warm-up); both QEMUs inherit "
        "their files opened by vm::OpenQemuFiles; ferryd's runs as a uid of its own (through "
        "setpriv), the bare one as root",
        "ratio = ferry median / comparison median; overhead = ratio - 1",
    };
  }

  void TearDown() override { StopAndSweep(ferryd_, "", {&bare_dir_, &bare_ram_dir_}); }

 private:
  Result<Measurements> RunFerry(const Trial& trial) {
    const std::string name = "b" + std::to_string(trial.round);
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    FERRY_ASSIGN_OR_RETURN(
        CliRun create,
        ferryd_->Cli(
            {"vm", "create", name, "--memory", std::to_string(config_.memory_mib), "--forward",
             std::to_string(port) + ":" + std::to_string(setup_.guest_port), "--wait-ready"},
            kBootTimeout));
    Status st = create.ToStatus();
    Measurements m;
    if (st.ok()) {
      auto show = ferryd_->CliJson({"vm", "show", name, "--json"}, kCommandTimeout);
      st = show.status();
      if (st.ok()) {
        m[kFerryTotal] = Millis(create.elapsed);
        m[kFerrydBoot] = show->value("boot_to_ready_ms", 0.0);
        if (m[kFerrydBoot] <= 0) {
          st = Status::Internal("vm " + name + " reports no boot_to_ready_ms");
        }
      }
      if (st.ok() && trial.warm_up()) {
        st = setup_.CheckSameCommandLine(*show, port, bare_dir_->path());
      }
    }
    // Delete even after a failure, so the next run starts from nothing.
    auto del = ferryd_->Cli({"vm", "delete", name, "--force"}, kCommandTimeout);
    if (st.ok()) st = del.ok() ? del->ToStatus() : del.status();
    if (!st.ok()) return st;
    return m;
  }

  Result<Measurements> RunBare(const Trial& trial) {
    const std::string name = "bare" + std::to_string(trial.round);
    const std::string dir = bare_dir_->Join(name);
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    Result<double> elapsed = Status::Internal("not run");
    {
      auto qemu = BareQemu::Launch(
          setup_.BareSpec(name, dir, bare_ram_dir_->path(), config_.memory_mib, port),
          dir + "/qemu.log");
      if (!qemu.ok()) {
        elapsed = qemu.status();
      } else {
        auto seen = (*qemu)->WaitForConsole(setup_.image.ready_marker, kBootTimeout);
        elapsed = seen.ok() ? Result<double>(Millis(*seen - (*qemu)->spawned_at()))
                            : Result<double>(seen.status());
      }
    }  // QEMU killed, RAM file removed
    RemoveAll(dir);
    if (!elapsed.ok()) return elapsed.status().WithContext("bare QEMU " + name);
    return Measurements{{kBare, *elapsed}};
  }

  BenchConfig config_;
  GuestSetup setup_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> bare_dir_;
  std::optional<ScratchDir> bare_ram_dir_;
  std::string qemu_version_;
};

}  // namespace

FERRY_BENCH_ENTRY("cold_boot", ColdBoot);

}  // namespace ferry::bench

// Entry restore_migration: restoring a guest from a ferry snapshot next to QEMU restoring the
// same kind of guest from a plain migration file, at 1 GiB.
//
//   ferry side:      `ferry clone S --name cN --forward 0:6379 --json` of a snapshot of a 1 GiB
//                    default VM taken right after it was ready. Timed from spawning the CLI to
//                    its exit; ferryd's timings split it (running_ms: restore start to running).
//   comparison side: the plain QEMU way. Once, in set-up: a bare QEMU (ferryd's command line, 1
//                    GiB, see bare_spec.h) boots the image to ready, is stopped, and migrates its
//                    full state into a file (`cat > FILE` over a pipe, x-ignore-shared off, so
//                    the stream holds all RAM pages). Per run: a new bare QEMU with the same
//                    command line plus `-S -incoming defer` and a fresh RAM file, then `cat FILE`
//                    over a pipe into `migrate-incoming`, query-migrate polled every millisecond
//                    (as ferryd polls it) until completed, `cont`, and redis PING through its
//                    forward until it answers. Timed from QEMU's spawn.
//
// The stream goes through `sh -c 'cat ...'` and a pipe, as QEMU's `exec:` migration runs it; but
// ferryd's command line has -sandbox spawn=deny, under which QEMU cannot start a process, so the
// benchmark starts the same command and hands QEMU its end of the pipe (getfd, `fd:` URI).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "bench/baselines/bare_qemu.h"
#include "bench/baselines/bare_spec.h"
#include "bench/drivers/clone_fixture.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/drivers/stream_command.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/files.h"
#include "core/process.h"
#include "core/unique_fd.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMemoryMiB = 1024;
constexpr char kSnapshot[] = "s";
constexpr milliseconds kPingTimeout(30000);
constexpr milliseconds kMigrationTimeout(300000);
constexpr milliseconds kQmpTimeout(30000);
// A stream without RAM is the device state alone (under a MiB); with RAM it is far bigger.
constexpr uint64_t kMinStreamBytes = uint64_t{16} << 20;

// ferry side
constexpr char kFerryToRunning[] = "ferry_to_running_ms";
constexpr char kFerryRunningMs[] = "ferry_running_ms";
constexpr char kFerryDeviceMs[] = "ferry_device_state_ms";
constexpr char kFerryCli[] = "ferry_cli_ms";
constexpr char kFerryOutside[] = "ferry_outside_restore_ms";
// comparison side
constexpr char kBareToRunning[] = "bare_spawn_to_running_ms";
constexpr char kBareIncomingToRunning[] = "bare_incoming_to_running_ms";
constexpr char kBareToQmp[] = "bare_spawn_to_qmp_ms";
constexpr char kBareToPong[] = "bare_spawn_to_pong_ms";

class RestoreMigration : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {"restore_migration",
            "restore of a 1 GiB guest: ferry clone from a snapshot next to QEMU's -incoming of a "
            "plain migration file (all RAM in the stream, no memory sharing)",
            "`ferry clone S --name cN --forward 0:6379 --json`: CLI spawn to exit; to running = "
            "that minus the identity reset",
            "bare QEMU -S -incoming defer, `cat FILE` over a pipe into `migrate-incoming`, poll "
            "query-migrate, `cont`, redis PING: from QEMU's spawn",
            {
                Figure("restore to running, QEMU start included", kFerryToRunning, kBareToRunning,
                    Goal::MinSpeedup(5)),
                Figure("restore to running, QEMU start excluded (running_ms vs incoming..cont)",
                    kFerryRunningMs, kBareIncomingToRunning, Goal::MinSpeedup(5)),
                Figure("to serving: clone CLI (identity reset done) vs bare spawn to redis PONG",
                    kFerryCli, kBareToPong),
                Figure("ferry: device state load (device_state_ms)", kFerryDeviceMs, ""),
                Figure("ferry: outside the restore (CLI wall - restore_total_ms)", kFerryOutside, ""),
                Figure("bare: QEMU spawn to QMP answering", "", kBareToQmp),
            }};
  }

  Status SetUp(const BenchConfig& config) override {
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_RETURN_IF_ERROR(MakeBareQemuDirs(bare_dir_, bare_ram_dir_));
    qemu_version_ = guest_.qemu_version_line;
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config));

    // ferry's snapshot of a 1 GiB VM at its ready point; the VM itself is not needed after.
    FERRY_ASSIGN_OR_RETURN(BootedVm src, BootVm(*ferryd_, "r1g", kMemoryMiB, guest_.guest_port));
    FERRY_RETURN_IF_ERROR(guest_.CheckSameCommandLine(src.show, src.host_port, bare_dir_->path()));
    FERRY_ASSIGN_OR_RETURN(json snap, TakeSnapshot(*ferryd_, "r1g", kSnapshot));
    snapshot_data_mib_ = snap.value("ram_data_bytes", uint64_t{0}) >> 20;
    VmsToDelete source(*ferryd_);
    source.Add("r1g");
    FERRY_RETURN_IF_ERROR(source.DeleteNow());

    return SaveMigrationFile();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    return trial.side == Side::kFerry ? RunFerry(trial) : RunBare(trial);
  }

  std::vector<std::string> Notes() const override {
    return {
        guest_.AcceleratorNote(),
        guest_.ImageNote() + ", 1024 MiB on both sides, same command line (checked)",
        "qemu: " + (qemu_version_.empty() ? std::string("version unknown") : qemu_version_),
        "ferry snapshot: of a 1 GiB VM right after ready; " + std::to_string(snapshot_data_mib_) +
            " MiB of RAM data on tmpfs, mapped copy-on-write by the clone, plus the device state",
        "migration file: a bare 1 GiB QEMU booted to ready, `stop`, `migrate` into `cat > FILE` "
        "over a pipe with x-ignore-shared off: " +
            std::to_string(stream_bytes_ >> 20) +
            " MiB on /dev/shm (tmpfs, like ferry's RAM image, so storage speed plays no part); "
            "each restore gets a fresh sparse RAM file",
        "ferry, restore to running: `ferry clone` CLI wall time minus the identity reset after "
        "`cont` (restore_total_ms - running_ms): an upper bound, QEMU's start included",
        "bare, restore to running: QEMU spawn to `cont` answered, after query-migrate said "
        "completed (polled every ms, as ferryd polls it)",
        "bare streams: `sh -c 'cat ...'` over a pipe, the command QEMU's exec: migration would "
        "run, started by the benchmark (QEMU runs under ferryd's -sandbox spawn=deny) and "
        "handed to QEMU with getfd as `fd:stream`; the restore's start of it is timed",
        "QEMU start excluded: ferryd's running_ms (restore start, QMP connected, to `cont` "
        "answered) vs `cat FILE` started (before `migrate-incoming`) to `cont` answered",
        "to serving: ferry's clone is done once its identity is reset (new MAC, DHCP, hostname, "
        "...); the bare restore keeps the old identity, so it has less to do; both then answer "
        "redis PING (checked)",
        "ratio = ferry median / comparison median; `Nx less` = comparison median / ferry median",
    };
  }

  void TearDown() override { StopAndSweep(ferryd_, "", {&bare_dir_, &bare_ram_dir_}); }

 private:
  Status SaveMigrationFile() {
    const std::string name = "src";
    const std::string dir = bare_dir_->Join(name);
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    stream_path_ = bare_ram_dir_->Join("migration.stream");
    Status st;
    {
      FERRY_ASSIGN_OR_RETURN(
          auto qemu,
          BareQemu::Launch(guest_.BareSpec(name, dir, bare_ram_dir_->path(), kMemoryMiB, port),
                           dir + "/qemu.log"));
      auto ready = qemu->WaitForConsole(guest_.image.ready_marker, kVmBootTimeout);
      if (!ready.ok()) return ready.status().WithContext("bare QEMU booting to save its state");
      FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, qemu->Qmp(kQmpTimeout));
      FERRY_RETURN_IF_ERROR(qmp->Execute("stop").status());
      auto caps = qmp->Execute("query-migrate-capabilities");
      if (caps.ok()) {
        for (const auto& c : *caps) {
          if (c.value("capability", "") == "x-ignore-shared" && c.value("state", false)) {
            return Status::FailedPrecondition("x-ignore-shared is on in a fresh QEMU");
          }
        }
      }
      st = SaveToFile(*qemu, stream_path_, dir + "/cat.log", kMigrationTimeout);
    }
    RemoveAll(dir);
    FERRY_RETURN_IF_ERROR(st.WithContext("saving the bare QEMU's migration stream"));
    struct stat s {};
    if (::stat(stream_path_.c_str(), &s) != 0) {
      return Status::Internal("the migration stream " + stream_path_ + " was not written");
    }
    stream_bytes_ = static_cast<uint64_t>(s.st_size);
    if (stream_bytes_ < kMinStreamBytes) {
      return Status::Internal("the migration stream is only " + std::to_string(stream_bytes_) +
                              " bytes: it holds no RAM");
    }
    return Status::Ok();
  }

  Result<Measurements> RunFerry(const Trial& trial) {
    const std::string name = "c" + std::to_string(trial.round);
    VmsToDelete cleanup(*ferryd_);
    FERRY_ASSIGN_OR_RETURN(CloneRun c, ClonePinged(*ferryd_, cleanup, kSnapshot, name,
                                                   guest_.guest_port, kPingTimeout));
    Measurements m = {
        {kFerryToRunning, c.CommandToRunningMs()},
        {kFerryRunningMs, c.Timing("running_ms")},
        {kFerryDeviceMs, c.Timing("device_state_ms")},
        {kFerryCli, c.cli_ms},
        {kFerryOutside, c.cli_ms - c.Timing("restore_total_ms")},
    };
    FERRY_RETURN_IF_ERROR(cleanup.DeleteNow());
    return m;
  }

  Result<Measurements> RunBare(const Trial& trial) {
    const std::string name = "r" + std::to_string(trial.round);
    const std::string dir = bare_dir_->Join(name);
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    Result<Measurements> result = Status::Internal("not run");
    {
      BareLaunch launch = guest_.BareSpec(name, dir, bare_ram_dir_->path(), kMemoryMiB, port);
      launch.spec.incoming = true;
      auto qemu = BareQemu::Launch(launch, dir + "/qemu.log");
      if (!qemu.ok()) {
        result = qemu.status();
      } else {
        result = Restore(**qemu, port, dir + "/cat.log");
      }
    }  // QEMU killed, RAM file removed
    RemoveAll(dir);
    if (!result.ok()) return result.status().WithContext("bare QEMU " + name);
    return result;
  }

  // `log`: where the stream command's output goes.
  Result<Measurements> Restore(BareQemu& qemu, uint16_t port, const std::string& log) {
    const auto t0 = qemu.spawned_at();
    // Connected first: the incoming figure starts once QMP answers.
    FERRY_RETURN_IF_ERROR(qemu.Qmp(kQmpTimeout).status());
    const auto incoming = Clock::now();
    FERRY_ASSIGN_OR_RETURN(auto running,
                           RestoreFromFile(qemu, stream_path_, log, kMigrationTimeout));
    FERRY_RETURN_IF_ERROR(RedisPing(port, kPingTimeout));
    const auto pong = Clock::now();
    return Measurements{
        {kBareToRunning, DurationMs(running - t0)},
        {kBareIncomingToRunning, DurationMs(running - incoming)},
        {kBareToQmp, DurationMs(incoming - t0)},
        {kBareToPong, DurationMs(pong - t0)},
    };
  }

  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> bare_dir_;
  std::optional<ScratchDir> bare_ram_dir_;
  std::string qemu_version_;
  std::string stream_path_;
  uint64_t stream_bytes_ = 0;
  uint64_t snapshot_data_mib_ = 0;
};

}  // namespace

FERRY_BENCH_ENTRY("restore_migration", RestoreMigration);

}  // namespace ferry::bench

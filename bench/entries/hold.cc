// Entry hold: a hold of a full 1 GiB guest, and its restore, next to QEMU saving the same kind of
// guest to a file and restoring it from there.
//
//   ferry side:      a 1 GiB default VM booted through ferryd (with --tls-dir: holds are signed
//                    by the host), made to hold kBallastMiB of random bytes (`ferry vm ballast`),
//                    then `ferry hold hN --json` timed from spawning the CLI to its exit: command
//                    to durable (chunks and manifest fsynced). Then `ferry hold restore hN
//                    --wait-ready` timed the same way: command to running, redis PING checked.
//                    The store lies in ferryd's state directory on the benchmark's /tmp disk.
//   comparison side: a bare QEMU with ferryd's command line, booted and given the same ballast
//                    (through its guest socket), `stop`, then `migrate` into `cat > FILE` over a
//                    pipe (x-ignore-shared off: the whole RAM in the stream), FILE on the same
//                    disk, timed from `stop` to cat's exit and fsync(FILE): command to durable.
//                    Then a new bare QEMU `-incoming defer`, `cat FILE` into `migrate-incoming`,
//                    `cont`, timed from QEMU's spawn to `cont` answered, redis PING checked.
#include <fcntl.h>
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
#include "core/unique_fd.h"
#include "qemu/guest_channel.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMemoryMiB = 1024;
constexpr uint64_t kBallastMiB = kBallastMiBOf1GiB;
constexpr milliseconds kPingTimeout(30000);
constexpr milliseconds kHoldTimeout(600000);
constexpr milliseconds kMigrationTimeout(600000);
constexpr milliseconds kQmpTimeout(30000);
constexpr uint64_t kUnthrottled = uint64_t{1} << 40;  // bytes/s: no limit in practice

// ferry side
constexpr char kFerryHold[] = "ferry_hold_ms";
constexpr char kFerryPauseToDurable[] = "ferry_pause_to_durable_ms";
// Where the store's seal went (store::HoldStats): chunking, making chunks durable, manifest.
constexpr char kFerryChunk[] = "ferry_seal_chunk_ms";
constexpr char kFerrySync[] = "ferry_seal_sync_ms";
constexpr char kFerryManifest[] = "ferry_seal_manifest_ms";
constexpr char kFerryDeviceState[] = "ferry_device_state_ms";
constexpr char kFerryRestore[] = "ferry_restore_ms";
constexpr char kFerryStoredMiB[] = "ferry_stored_mib";
// comparison side
constexpr char kBareSave[] = "bare_save_durable_ms";
constexpr char kBareSaveNoSync[] = "bare_save_ms";
constexpr char kBareRestore[] = "bare_restore_ms";
constexpr char kBareFileMiB[] = "bare_file_mib";

Status Fsync(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return Status::Internal("cannot fsync " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

class Hold : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {"hold",
            "hold and restore of a 1 GiB guest holding " + std::to_string(kBallastMiB) +
                " MiB of random bytes: ferry's sealed, deduplicated store next to QEMU saving "
                "to a file",
            "`ferry hold hN`: CLI spawn to exit (durable); `ferry hold restore hN --wait-ready`: "
            "CLI spawn to exit",
            "bare QEMU `stop` + `migrate` into `cat > FILE` + fsync(FILE); restore: spawn "
            "-incoming defer, `cat FILE` into `migrate-incoming`, `cont`",
            {
                Figure("hold: command to durable vs QEMU stop+save to file+fsync", kFerryHold,
                       kBareSave, Goal::MaxRatio(0.5)),
                Figure("restore: command to running vs QEMU -incoming from the file", kFerryRestore,
                       kBareRestore, Goal::MaxRatio(1.0)),
                Figure("ferry: pause to durable as ferryd timed it", kFerryPauseToDurable, ""),
                Figure("ferry: pause to device state saved", kFerryDeviceState, ""),
                Figure("ferry: seal: chunks read, sealed, written", kFerryChunk, ""),
                Figure("ferry: seal: chunks made durable", kFerrySync, ""),
                Figure("ferry: seal: manifest written", kFerryManifest, ""),
                Figure("bare: save without fsync", "", kBareSaveNoSync),
                Figure("MiB written: new in the store vs the file", kFerryStoredMiB, kBareFileMiB,
                       {}, Unit::kMiB),
            }};
  }

  Status SetUp(const BenchConfig& config) override {
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("/tmp", "ferry-bench-hold"));
    FERRY_ASSIGN_OR_RETURN(ScratchDir ram, ScratchDir::Create("/dev/shm", "ferry-bench-hold"));
    dir_ = std::move(dir);
    ram_dir_ = std::move(ram);
    // The host's fleet identity: a hold's manifest is signed with its key.
    const std::string ferry = config.ferry_binary();
    FERRY_RETURN_IF_ERROR(
        RunTool({ferry, "ca", "init", "--dir", dir_->Join("ca")}, kQmpTimeout).status());
    FERRY_RETURN_IF_ERROR(RunTool({ferry, "host", "enroll", "--ca", dir_->Join("ca"), "--host-id",
                                   "bench", "--out", dir_->Join("tls")},
                                  kQmpTimeout)
                              .status());
    BenchFerrydOptions options;
    options.extra_args = {"--tls-dir", dir_->Join("tls")};
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config, options));
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    return trial.side == Side::kFerry ? RunFerry(trial) : RunBare(trial);
  }

  std::vector<std::string> Notes() const override {
    return {
        guest_.AcceleratorNote(),
        guest_.ImageNote() + ", 1024 MiB on both sides, ferryd's command line on both",
        "ballast: " + std::to_string(kBallastMiB) +
            " MiB of xorshift64* bytes held by ferry-guest (`ballast` op), a fresh seed each run: "
            "nothing in it compresses or deduplicates",
        "ferry's store and the bare side's FILE are on the same disk (/tmp); RAM files on "
        "/dev/shm on both sides",
        "ferry: the hold is durable when its chunks and its manifest are fsynced; the bare "
        "save is made durable by an fsync of FILE after cat exits (the row without it is shown)",
        "between runs `ferry store gc` removes the consumed holds' chunks (not timed)",
        "bare save: QEMU's migration max-bandwidth raised from its 128 MiB/s default to "
        "unlimited, as ferry's hold has no throttle",
        "ratio = ferry median / comparison median",
    };
  }

  void TearDown() override { StopAndSweep(ferryd_, "", {&dir_, &ram_dir_}); }

 private:
  Result<Measurements> RunFerry(const Trial& trial) {
    const std::string name = "h" + std::to_string(trial.round);
    VmsToDelete cleanup(*ferryd_);
    cleanup.Add(name);
    FERRY_ASSIGN_OR_RETURN(BootedVm vm, BootVm(*ferryd_, name, kMemoryMiB, guest_.guest_port));
    FERRY_RETURN_IF_ERROR(GiveBallast(*ferryd_, name, kBallastMiB));
    FERRY_ASSIGN_OR_RETURN(CliRun hold, ferryd_->Cli({"hold", name, "--json"}, kHoldTimeout));
    FERRY_RETURN_IF_ERROR(hold.ToStatus());
    json held = json::parse(hold.output, nullptr, false);
    if (!held.is_object()) return Status::Internal("ferry hold --json printed no JSON object");
    FERRY_ASSIGN_OR_RETURN(CliRun restore,
                           ferryd_->Cli({"hold", "restore", name, "--wait-ready"}, kHoldTimeout));
    FERRY_RETURN_IF_ERROR(restore.ToStatus());
    FERRY_RETURN_IF_ERROR(RedisPing(vm.host_port, kPingTimeout).WithContext("restored " + name));
    Measurements m = {
        {kFerryHold, DurationMs(hold.elapsed)},
        {kFerryPauseToDurable, held.value("pause_to_durable_ms", 0.0)},
        {kFerryDeviceState, held.value("device_state_ms", 0.0)},
        {kFerryChunk, held.value("seal_chunk_ms", 0.0)},
        {kFerrySync, held.value("seal_sync_ms", 0.0)},
        {kFerryManifest, held.value("seal_manifest_ms", 0.0)},
        {kFerryRestore, DurationMs(restore.elapsed)},
        {kFerryStoredMiB, held.value("stored_new_bytes", 0.0) / (1 << 20)},
    };
    FERRY_RETURN_IF_ERROR(cleanup.DeleteNow());
    FERRY_ASSIGN_OR_RETURN(CliRun gc, ferryd_->Cli({"store", "gc"}, kHoldTimeout));
    FERRY_RETURN_IF_ERROR(gc.ToStatus());
    return m;
  }

  Result<Measurements> RunBare(const Trial& trial) {
    const std::string name = "b" + std::to_string(trial.round);
    const std::string file = dir_->Join(name + ".state");
    Result<Measurements> result = Status::Internal("not run");
    {
      auto saved = Save(name, file);
      if (saved.ok()) {
        auto restored = Restore(name + "r", file);
        if (restored.ok()) saved->insert(restored->begin(), restored->end());
        result = restored.ok() ? std::move(saved).value() : Result<Measurements>(restored.status());
      } else {
        result = saved.status();
      }
    }
    ::unlink(file.c_str());
    RemoveAll(dir_->Join(name));
    RemoveAll(dir_->Join(name + "r"));
    if (!result.ok()) return result.status().WithContext("bare QEMU " + name);
    return result;
  }

  // Boots a bare QEMU, gives it the ballast, saves it into `file`; times the save.
  Result<Measurements> Save(const std::string& name, const std::string& file) {
    const std::string dir = dir_->Join(name);
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    BareLaunch launch = guest_.BareSpec(name, dir, ram_dir_->path(), kMemoryMiB, port);
    FERRY_ASSIGN_OR_RETURN(auto qemu, BareQemu::Launch(launch, dir + "/qemu.log"));
    FERRY_RETURN_IF_ERROR(qemu->WaitForConsole(guest_.image.ready_marker, kVmBootTimeout).status());
    {
      FERRY_ASSIGN_OR_RETURN(auto guest,
                             qemu::GuestChannel::Connect(launch.files.guest_socket, kQmpTimeout));
      auto filled = guest->Call("ballast", {{"mib", kBallastMiB}}, kBallastTimeout);
      if (!filled.ok()) return filled.status().WithContext("ballast in the bare guest");
    }
    FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, qemu->Qmp(kQmpTimeout));
    // QEMU throttles a migration to 128 MiB/s by default; ferry's hold has no throttle, so
    // neither has the comparison.
    FERRY_RETURN_IF_ERROR(
        qmp->Execute("migrate-set-parameters", {{"max-bandwidth", kUnthrottled}}).status());
    const auto t0 = Clock::now();
    FERRY_RETURN_IF_ERROR(qmp->Execute("stop").status());
    FERRY_RETURN_IF_ERROR(SaveToFile(*qemu, file, dir + "/cat.log", kMigrationTimeout));
    const auto saved = Clock::now();
    FERRY_RETURN_IF_ERROR(Fsync(file));
    const auto durable = Clock::now();
    struct stat st {};
    ::stat(file.c_str(), &st);
    return Measurements{{kBareSave, DurationMs(durable - t0)},
                        {kBareSaveNoSync, DurationMs(saved - t0)},
                        {kBareFileMiB, static_cast<double>(st.st_size) / (1 << 20)}};
  }

  // A new bare QEMU restored from `file`; times spawn to `cont` answered.
  Result<Measurements> Restore(const std::string& name, const std::string& file) {
    const std::string dir = dir_->Join(name);
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(uint16_t port, FreeLoopbackPort());
    BareLaunch launch = guest_.BareSpec(name, dir, ram_dir_->path(), kMemoryMiB, port);
    launch.spec.incoming = true;
    FERRY_ASSIGN_OR_RETURN(auto qemu, BareQemu::Launch(launch, dir + "/qemu.log"));
    const auto t0 = qemu->spawned_at();
    FERRY_ASSIGN_OR_RETURN(auto running,
                           RestoreFromFile(*qemu, file, dir + "/cat.log", kMigrationTimeout));
    FERRY_RETURN_IF_ERROR(RedisPing(port, kPingTimeout));
    return Measurements{{kBareRestore, DurationMs(running - t0)}};
  }

  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> dir_;
  std::optional<ScratchDir> ram_dir_;
};

}  // namespace

FERRY_BENCH_ENTRY("hold", Hold);

}  // namespace ferry::bench

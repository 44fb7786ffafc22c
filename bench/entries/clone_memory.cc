// Entry clone_memory: host memory taken by 16 idle clones of one 512 MiB snapshot, next to what
// 16 separate 512 MiB guests would reserve.
//
//   ferry side (no comparison side: the reference is the constant 16 x 512 MiB): a 512 MiB
//   default VM is booted to ready, snapshotted and deleted once. Per run: `ferry clone S --name
//   mN-1 ... --name mN-16 --forward 0:6379 --json` (one command, 16 clones), each clone checked
//   to answer redis PING, then 5 s of idling, then, from the host: the sum of the 16 QEMU
//   processes' PSS (/proc/PID/smaps_rollup) plus the snapshot RAM file's allocated size on tmpfs
//   (st_blocks * 512), and MemAvailable before the clone command and after the idling. The 16
//   clones are deleted before the next run. The warm-up run uses 2 clones.
#include <sys/stat.h>

#include <optional>

#include "bench/baselines/bare_spec.h"
#include "bench/drivers/clone_fixture.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/runner.h"
#include "core/files.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr uint64_t kMemoryMiB = 512;
constexpr int kClones = 16;
constexpr int kWarmUpClones = 2;
constexpr char kSnapshot[] = "s";
constexpr milliseconds kIdle(5000);
constexpr milliseconds kPingTimeout(30000);

constexpr char kTotal[] = "pss_plus_file_mib";
constexpr char kFull[] = "full_copies_mib";
constexpr char kNoDouble[] = "pss_minus_shmem_plus_file_mib";
constexpr char kSumPss[] = "sum_pss_mib";
constexpr char kSumAnon[] = "sum_pss_anon_mib";
constexpr char kSumShmem[] = "sum_pss_shmem_mib";
constexpr char kPerClone[] = "pss_per_clone_mib";
constexpr char kFile[] = "snapshot_file_mib";
constexpr char kAvailDrop[] = "mem_available_drop_mib";
constexpr char kCloneCli[] = "clone_16_cli_ms";
constexpr char kPerCloneCli[] = "clone_cli_per_clone_ms";

class CloneMemory : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {
        "clone_memory",
        "host memory of 16 idle clones of a 512 MiB snapshot, next to 16 x 512 MiB",
        "`ferry clone S --name mN-1 ... --name mN-16 --forward 0:6379 --json`, 5 s idle, "
        "then PSS of the 16 QEMUs + the snapshot file's tmpfs blocks",
        "",
        {
            FerrySideFigure("16 idle clones: sum of PSS + snapshot file vs 16 x 512 MiB", kTotal,
                            kFull, Goal::MaxRatio(0.2, "<= 20%")),
            FerrySideFigure("  same, without counting the mapped snapshot pages twice", kNoDouble,
                            kFull),
            FerrySideFigure("  sum of PSS of the 16 QEMUs", kSumPss, kFull),
            FerrySideFigure("    of which anonymous (Pss_Anon: QEMU, TCG, pages the guests wrote)",
                            kSumAnon, ""),
            FerrySideFigure("    of which tmpfs pages mapped (Pss_Shmem: the snapshot file's)",
                            kSumShmem, ""),
            FerrySideFigure("  PSS per clone", kPerClone, ""),
            FerrySideFigure("  snapshot RAM file, allocated on tmpfs", kFile, ""),
            FerrySideFigure(
                "host MemAvailable drop (before cloning - after idling) vs 16 x 512 MiB",
                kAvailDrop, kFull),
            FerrySideFigure("`ferry clone --count 16` (16 --name): CLI wall", kCloneCli, "",
                            Goal::None(), Unit::kMillis),
            FerrySideFigure("  per clone", kPerCloneCli, "", Goal::None(), Unit::kMillis),
        }};
  }

  Status SetUp(const BenchConfig& config) override {
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config));
    FERRY_ASSIGN_OR_RETURN(BootedVm src, BootVm(*ferryd_, "m512", kMemoryMiB, guest_.guest_port));
    (void)src;
    FERRY_ASSIGN_OR_RETURN(json snap, TakeSnapshot(*ferryd_, "m512", kSnapshot));
    snapshot_data_mib_ = snap.value("ram_data_bytes", uint64_t{0}) >> 20;
    // The source VM's own RAM must not count, nor compete for the CPU.
    VmsToDelete source(*ferryd_);
    source.Add("m512");
    FERRY_RETURN_IF_ERROR(source.DeleteNow());
    FERRY_ASSIGN_OR_RETURN(
        json show, ferryd_->CliJson({"snapshot", "show", kSnapshot, "--json"}, kVmCommandTimeout));
    ram_path_ = show.value("ram_path", "");
    if (ram_path_.empty()) {
      return Status::Internal("`ferry snapshot show --json` names no ram_path: " + show.dump());
    }
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    const int count = trial.warm_up() ? kWarmUpClones : kClones;
    const std::vector<std::string> names = RunCloneNames("m", trial.round, count);
    VmsToDelete cleanup(*ferryd_);

    FERRY_ASSIGN_OR_RETURN(uint64_t avail_before, ProcKiB("/proc/meminfo", "MemAvailable"));
    FERRY_ASSIGN_OR_RETURN(auto clones, ClonesPinged(*ferryd_, cleanup, kSnapshot, names,
                                                     guest_.guest_port, kPingTimeout));
    FERRY_RETURN_IF_ERROR(SleepUnlessInterrupted(kIdle));

    uint64_t pss = 0, anon = 0, shmem = 0;  // KiB
    for (const CloneRun& c : clones) {
      if (c.pid <= 0) return Status::Internal("clone " + c.name + " reports no QEMU pid");
      const std::string proc = "/proc/" + std::to_string(c.pid);
      // QEMU's command line names its RAM by descriptor (/proc/self/fd/N); its mappings name
      // the file.
      auto maps = ReadFile(proc + "/maps");
      if (!maps.ok() || maps->find(ram_path_) == std::string::npos) {
        return Status::FailedPrecondition("pid " + std::to_string(c.pid) + " of clone " + c.name +
                                          " is not a QEMU mapping " + ram_path_);
      }
      FERRY_ASSIGN_OR_RETURN(uint64_t p, ProcKiB(proc + "/smaps_rollup", "Pss"));
      FERRY_ASSIGN_OR_RETURN(uint64_t a, ProcKiB(proc + "/smaps_rollup", "Pss_Anon"));
      FERRY_ASSIGN_OR_RETURN(uint64_t s, ProcKiB(proc + "/smaps_rollup", "Pss_Shmem"));
      pss += p;
      anon += a;
      shmem += s;
    }
    struct stat st {};
    if (::stat(ram_path_.c_str(), &st) != 0) {
      return Status::Internal("cannot stat the snapshot RAM file " + ram_path_);
    }
    const uint64_t file_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    FERRY_ASSIGN_OR_RETURN(uint64_t avail_after, ProcKiB("/proc/meminfo", "MemAvailable"));

    const double kib_to_mib = 1.0 / 1024;
    Measurements m = {
        {kTotal, pss * kib_to_mib + BytesToMiB(file_bytes)},
        {kFull, static_cast<double>(count * kMemoryMiB)},
        {kNoDouble, (pss - shmem) * kib_to_mib + BytesToMiB(file_bytes)},
        {kSumPss, pss * kib_to_mib},
        {kSumAnon, anon * kib_to_mib},
        {kSumShmem, shmem * kib_to_mib},
        {kPerClone, pss * kib_to_mib / count},
        {kFile, BytesToMiB(file_bytes)},
        {kAvailDrop,
         (static_cast<double>(avail_before) - static_cast<double>(avail_after)) * kib_to_mib},
        {kCloneCli, clones.front().cli_ms},
        {kPerCloneCli, clones.front().cli_ms / count},
    };
    FERRY_RETURN_IF_ERROR(cleanup.DeleteNow());
    return m;
  }

  std::vector<std::string> Notes() const override {
    return {
        guest_.AcceleratorNote(),
        guest_.ImageNote() + ", 512 MiB",
        "snapshot: of a 512 MiB VM right after ready (" + std::to_string(snapshot_data_mib_) +
            " MiB of RAM data); the VM was deleted before the runs",
        "per run: one `ferry clone` command makes 16 clones (one after the other inside "
        "ferryd), each checked to answer redis PING, then 5 s idle, then the measurement; the "
        "warm-up run makes 2",
        "memory = sum over the 16 QEMUs of Pss from /proc/PID/smaps_rollup + the snapshot RAM "
        "file's st_blocks * 512; the reference is 16 x 512 MiB = 8192 MiB",
        "the snapshot file's pages that clones map are in both their Pss (as Pss_Shmem) and the "
        "file's blocks, so the first row counts them twice (as defined); the second row counts "
        "them once: sum(Pss - Pss_Shmem) + file",
        "MemAvailable (from /proc/meminfo) is host-wide: anything else running on the host moves "
        "it too",
        "ratio = ferry median / 16 x 512 MiB",
    };
  }

  void TearDown() override {
    if (ferryd_) ferryd_->Stop();
    ferryd_.reset();
  }

 private:
  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::string ram_path_;
  uint64_t snapshot_data_mib_ = 0;
};

}  // namespace

FERRY_BENCH_ENTRY("clone_memory", CloneMemory);

}  // namespace ferry::bench

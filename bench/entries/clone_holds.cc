// Entry clone_holds: what the store keeps of 8 holds of clones of one 512 MiB snapshot, next to
// 8 times what one such hold keeps alone.
//
//   ferry side (no comparison side: both columns come from the same runs): in set-up, a 512 MiB
//   VM of the default image is booted through a ferryd with --tls-dir (holds are signed by the
//   host), snapshotted right after ready, and deleted. Per run, into an empty store: `ferry
//   clone S --name hN-1 ... --name hN-8 --forward 0:6379`, each clone checked (redis PING), then
//   `ferry hold hN-i --json` for each in turn, timed from spawning the CLI to its exit, and
//   `ferry store show --json` after each. "one hold alone" is what the first hold added to the
//   empty store; "8 holds" is the store's stored bytes after all eight. The holds are then
//   deleted (crypto-shred) and `ferry store gc` empties the store (not timed).
#include <algorithm>
#include <optional>

#include "bench/baselines/bare_spec.h"
#include "bench/drivers/clone_fixture.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr uint64_t kMemoryMiB = 512;
constexpr int kClones = 8;
constexpr int kWarmUpClones = 2;
constexpr char kSnapshot[] = "ch512";
constexpr milliseconds kPingTimeout(30000);
constexpr milliseconds kHoldTimeout(600000);
constexpr milliseconds kToolTimeout(30000);

constexpr char kStoredAll[] = "stored_all_mib";
constexpr char kEightAlone[] = "eight_alone_mib";
constexpr char kFirstStored[] = "first_stored_mib";
constexpr char kLaterStored[] = "later_stored_mib";  // median of holds 2..8
constexpr char kLogicalAll[] = "logical_all_mib";
constexpr char kHoldCli[] = "hold_cli_ms";  // median of the 8 holds
constexpr char kHoldPause[] = "hold_pause_to_durable_ms";
constexpr char kStreamMs[] = "clone_stream_ms";

class CloneHolds : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {
        "clone_holds",
        "stored bytes of 8 holds of clones of one 512 MiB snapshot, next to 8 x one hold alone",
        "per run, into an empty store: 8 clones of the snapshot, then `ferry hold` of each in "
        "turn; `ferry store show` after each hold",
        "",
        {
            FerrySideFigure("8 holds of sibling clones: stored vs 8 x one hold alone", kStoredAll,
                            kEightAlone, Goal::MaxRatio(1.5 / 8, "<= 1.5/8 (0.1875)")),
            FerrySideFigure("  one hold alone (the first, into an empty store)", kFirstStored, ""),
            FerrySideFigure("  each later hold: new in the store (median of holds 2-8)",
                            kLaterStored, kFirstStored),
            FerrySideFigure("  logical bytes of the 8 holds", kLogicalAll, ""),
            FerrySideFigure("`ferry hold` of a clone: CLI wall (median of 8)", kHoldCli, "", {},
                            Unit::kMillis),
            FerrySideFigure("  pause to durable as ferryd timed it", kHoldPause, "", {},
                            Unit::kMillis),
            FerrySideFigure("  of which streaming and splitting the clone's state", kStreamMs, "",
                            {}, Unit::kMillis),
        }};
  }

  Status SetUp(const BenchConfig& config) override {
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("/tmp", "ferry-bench-clone-holds"));
    dir_ = std::move(dir);
    const std::string ferry = config.ferry_binary();
    FERRY_RETURN_IF_ERROR(
        RunTool({ferry, "ca", "init", "--dir", dir_->Join("ca")}, kToolTimeout).status());
    FERRY_RETURN_IF_ERROR(RunTool({ferry, "host", "enroll", "--ca", dir_->Join("ca"), "--host-id",
                                   "bench", "--out", dir_->Join("tls")},
                                  kToolTimeout)
                              .status());
    BenchFerrydOptions options;
    options.extra_args = {"--tls-dir", dir_->Join("tls")};
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config, options));
    FERRY_ASSIGN_OR_RETURN(BootedVm src, BootVm(*ferryd_, "t512", kMemoryMiB, guest_.guest_port));
    (void)src;
    FERRY_ASSIGN_OR_RETURN(json snap, TakeSnapshot(*ferryd_, "t512", kSnapshot));
    snapshot_data_mib_ = snap.value("ram_data_bytes", uint64_t{0}) >> 20;
    VmsToDelete source(*ferryd_);
    source.Add("t512");
    return source.DeleteNow();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    const int count = trial.warm_up() ? kWarmUpClones : kClones;
    const std::vector<std::string> names = RunCloneNames("h", trial.round, count);
    VmsToDelete cleanup(*ferryd_);
    FERRY_ASSIGN_OR_RETURN(auto clones, ClonesPinged(*ferryd_, cleanup, kSnapshot, names,
                                                     guest_.guest_port, kPingTimeout));
    FERRY_ASSIGN_OR_RETURN(uint64_t before, StoredBytes());
    if (before != 0) {
      return Status::FailedPrecondition("the store is not empty before the run (" +
                                        std::to_string(before) + " bytes)");
    }
    std::vector<double> hold_ms, pause_ms, stream_ms, later;
    uint64_t first = 0, stored = 0, logical = 0;
    Status held = Status::Ok();
    for (const auto& name : names) {
      auto hold = ferryd_->Cli({"hold", name, "--json"}, kHoldTimeout);
      if (!hold.ok()) {
        held = hold.status();
        break;
      }
      if (Status st = hold->ToStatus(); !st.ok()) {
        held = st.WithContext("hold of clone " + name);
        break;
      }
      json result = json::parse(hold->output, nullptr, false);
      if (!result.is_object()) {
        held = Status::Internal("`ferry hold --json` printed no JSON object");
        break;
      }
      hold_ms.push_back(DurationMs(hold->elapsed));
      pause_ms.push_back(result.value("pause_to_durable_ms", 0.0));
      stream_ms.push_back(result.value("clone", json::object()).value("stream_ms", 0.0));
      logical += result.value("logical_bytes", uint64_t{0});
      auto now = StoredBytes();
      if (!now.ok()) {
        held = now.status();
        break;
      }
      if (name == names.front()) {
        first = *now;
      } else {
        later.push_back(BytesToMiB(*now - stored));
      }
      stored = *now;
    }
    // The holds go whatever happened: the next run starts from an empty store.
    for (const auto& name : names) (void)ferryd_->Cli({"hold", "delete", name}, kToolTimeout);
    auto gc = ferryd_->Cli({"store", "gc"}, kHoldTimeout);
    FERRY_RETURN_IF_ERROR(held);
    FERRY_RETURN_IF_ERROR(gc.status());
    FERRY_RETURN_IF_ERROR(gc->ToStatus());
    Measurements m = {
        {kStoredAll, BytesToMiB(stored)},
        {kEightAlone, static_cast<double>(count) * BytesToMiB(first)},
        {kFirstStored, BytesToMiB(first)},
        {kLogicalAll, BytesToMiB(logical)},
        {kHoldCli, Median(hold_ms).value_or(0)},
        {kHoldPause, Median(pause_ms).value_or(0)},
        {kStreamMs, Median(stream_ms).value_or(0)},
    };
    if (!later.empty()) m[kLaterStored] = *Median(later);
    return m;
  }

  std::vector<std::string> Notes() const override {
    return {
        guest_.AcceleratorNote(),
        guest_.ImageNote() + ", 512 MiB",
        "snapshot: of a 512 MiB VM right after ready (" + std::to_string(snapshot_data_mib_) +
            " MiB of RAM data); the VM was deleted before the runs",
        "per run: one `ferry clone` command makes the 8 clones (each checked to answer redis "
        "PING), then each is held in turn; the warm-up run makes and holds 2",
        "stored = `ferry store show`'s stored_bytes (sealed chunk files, after zstd and dedup; "
        "one owner: the clones have no policy, so all share the unowned scope)",
        "each clone diverges from the snapshot by its identity reset (hostname, machine-id, "
        "MAC, SSH host key, DHCP) and by running until its hold",
        "ratio = 8 holds' stored bytes / (8 x the first hold's)",
    };
  }

  void TearDown() override { StopAndSweep(ferryd_, "", {&dir_}); }

 private:
  Result<uint64_t> StoredBytes() {
    FERRY_ASSIGN_OR_RETURN(json show, ferryd_->CliJson({"store", "show", "--json"}, kToolTimeout));
    return show.value("stored_bytes", uint64_t{0});
  }

  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> dir_;
  uint64_t snapshot_data_mib_ = 0;
};

}  // namespace

FERRY_BENCH_ENTRY("clone_holds", CloneHolds);

}  // namespace ferry::bench

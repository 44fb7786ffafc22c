// Entry sibling_send: `ferry hold send` of two sibling clones' holds, one after the other, between
// two namespace hosts: what the second carries next to what the first did.
//
//   ferry side (no comparison side: both columns come from the same runs): in set-up, two
//   ferryds (ferry_migration.h's FerryFleet: h1 zone=a, h2 zone=b, the owner's policy allowing
//   zone=b), a 512 MiB VM booted on h1 with that policy, given kBallastMiB of random bytes
//   (`ferry vm ballast`), snapshotted, and deleted. Per run, into h2's empty store: `ferry clone`
//   of two siblings on h1, each held (`ferry hold`), then `ferry hold send A --to h2 --json` and
//   `ferry hold send B --to h2 --json`, each timed from spawning the CLI to its exit. Afterwards
//   both holds are deleted on h2 and its store collected (not timed).
//
// Figures: bytes on the wire (the sender's TLS counters) and sealed-chunk bytes of each send.
#include <unistd.h>

#include <optional>

#include "bench/baselines/bare_spec.h"
#include "bench/drivers/ferry_migration.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/harness/namespace_hosts.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr uint64_t kMemoryMiB = 512;
constexpr uint64_t kBallastMiB = 200;
constexpr char kVm[] = "ss";
constexpr char kSnapshot[] = "ss-base";
constexpr milliseconds kHoldTimeout(600000);

constexpr char kFirstWire[] = "first_wire_mib";
constexpr char kSecondWire[] = "second_wire_mib";
constexpr char kFirstChunks[] = "first_chunk_mib";
constexpr char kSecondChunks[] = "second_chunk_mib";
constexpr char kFirstMs[] = "first_send_ms";
constexpr char kSecondMs[] = "second_send_ms";

class SiblingSend : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {
        "sibling_send",
        "`ferry hold send` of two sibling clones' holds (512 MiB snapshot, " +
            std::to_string(kBallastMiB) + " MiB random) to a host that has neither",
        "per run: two clones held on h1, then `ferry hold send` of each to h2 in turn",
        "",
        {
            FerrySideFigure("bytes on the wire: second send vs the first", kSecondWire, kFirstWire,
                            Goal::MaxRatio(0.1, "<= 10 %")),
            FerrySideFigure("  sealed chunks sent: second vs first", kSecondChunks, kFirstChunks),
            FerrySideFigure("`ferry hold send`: second vs first, CLI wall", kSecondMs, kFirstMs, {},
                            Unit::kMillis),
        }};
  }

  Status SetUp(const BenchConfig& config) override {
    if (::geteuid() != 0) {
      return Status::FailedPrecondition("the sibling_send entry needs root: network namespaces");
    }
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("/tmp", "ferry-bench-sibling"));
    dir_ = std::move(dir);
    NamespaceHosts::SweepStale();
    FERRY_RETURN_IF_ERROR(hosts_.Build());
    FERRY_ASSIGN_OR_RETURN(fleet_, FerryFleet::Start(config, hosts_, dir_->Join("fleet"), {kVm}));
    BenchFerryd& h1 = fleet_->host(1);
    FERRY_ASSIGN_OR_RETURN(CliRun created,
                           h1.Cli({"vm", "create", kVm, "--memory", std::to_string(kMemoryMiB),
                                   "--policy", fleet_->PolicyFile(kVm), "--forward",
                                   "0:" + std::to_string(guest_.guest_port), "--wait-ready"},
                                  kVmBootTimeout));
    FERRY_RETURN_IF_ERROR(created.ToStatus());
    FERRY_RETURN_IF_ERROR(GiveBallast(h1, kVm, kBallastMiB));
    FERRY_RETURN_IF_ERROR(TakeSnapshot(h1, kVm, kSnapshot).status());
    VmsToDelete source(h1);
    source.Add(kVm);
    return source.DeleteNow();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    BenchFerryd& h1 = fleet_->host(1);
    const std::string round = "r" + std::to_string(trial.round) + (trial.warm_up() ? "w" : "");
    const std::vector<std::string> names = {round + "-a", round + "-b"};
    VmsToDelete cleanup(h1);
    cleanup.Add(names);
    FERRY_RETURN_IF_ERROR(CloneSnapshot(h1, kSnapshot, names, guest_.guest_port).status());
    for (const auto& name : names) {
      FERRY_ASSIGN_OR_RETURN(CliRun held, h1.Cli({"hold", name}, kHoldTimeout));
      FERRY_RETURN_IF_ERROR(held.ToStatus().WithContext("hold of clone " + name));
    }
    json sent[2];
    Status st = Status::Ok();
    for (int i = 0; i < 2 && st.ok(); ++i) {
      auto send = h1.Cli({"hold", "send", names[i], "--to", "h2", "--json"}, kHoldTimeout);
      st = send.ok() ? send->ToStatus() : send.status();
      if (!st.ok()) break;
      sent[i] = json::parse(send->output, nullptr, false);
      if (!sent[i].is_object()) st = Status::Internal("`ferry hold send --json` printed no JSON");
      if (st.ok()) sent[i]["elapsed_ms"] = DurationMs(send->elapsed);
    }
    // h2 starts every run with an empty store, whatever happened; h1 keeps what it did not send.
    BenchFerryd& h2 = fleet_->host(2);
    for (const auto& name : names) {
      (void)h2.Cli({"hold", "delete", name}, kVmCommandTimeout);
      (void)h1.Cli({"hold", "delete", name}, kVmCommandTimeout);
    }
    FERRY_RETURN_IF_ERROR(st);
    for (BenchFerryd* host : {&h1, &h2}) {
      FERRY_ASSIGN_OR_RETURN(CliRun gc, host->Cli({"store", "gc"}, kHoldTimeout));
      FERRY_RETURN_IF_ERROR(gc.ToStatus());
    }
    return Measurements{
        {kFirstWire, BytesToMiB(sent[0].value("wire_bytes_sent", uint64_t{0}))},
        {kSecondWire, BytesToMiB(sent[1].value("wire_bytes_sent", uint64_t{0}))},
        {kFirstChunks, BytesToMiB(sent[0].value("chunk_bytes_sent", uint64_t{0}))},
        {kSecondChunks, BytesToMiB(sent[1].value("chunk_bytes_sent", uint64_t{0}))},
        {kFirstMs, sent[0].value("elapsed_ms", 0.0)},
        {kSecondMs, sent[1].value("elapsed_ms", 0.0)},
    };
  }

  std::vector<std::string> Notes() const override {
    return {
        guest_.AcceleratorNote(),
        "snapshot: of a " + std::to_string(kMemoryMiB) + " MiB VM holding " +
            std::to_string(kBallastMiB) + " MiB of xorshift64* ballast; the VM was deleted before "
            "the runs",
        "each clone diverges from the snapshot by its identity reset and by running until its "
        "hold; both carry the owner's policy (dedup scope: that owner)",
        "wire bytes: the sender's TLS link counters (`wire_bytes_sent`); chunk bytes: sealed "
        "chunks h2 asked for",
        "ratio = second send / first send (same run)",
    };
  }

  void TearDown() override { StopFleetAndSweep(fleet_, hosts_, {&dir_}); }

 private:
  GuestSetup guest_;
  NamespaceHosts hosts_;
  std::unique_ptr<FerryFleet> fleet_;
  std::optional<ScratchDir> dir_;
};

}  // namespace

FERRY_BENCH_ENTRY("sibling_send", SiblingSend);

}  // namespace ferry::bench

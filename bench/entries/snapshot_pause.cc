// Entry snapshot_pause: how long a live snapshot stops the guest, at 256 MiB, 1 GiB and 4 GiB of
// guest RAM each about 90% full of data, idle and under a redis write load (issue 14), next to
// QEMU's own live snapshot of the same kind of guest.
//
//   ferry side:      one VM per size booted through ferryd and filled with ferry-guest's ballast
//                    (random bytes) in set-up; per run and cell `ferry snapshot create VM --name
//                    S --json` of the running VM: its pause_ms (ferryd's live pre-copy: QEMU's
//                    downtime, from its stop for the last pass to the stream's end, plus the time
//                    to the cont), and the CLI's wall time (command to snapshot registered, RAM
//                    image checksummed). The snapshot is deleted at once.
//   comparison side: a bare QEMU per size with ferryd's command line (memory-backend-file
//                    share=on on /dev/shm, checked against ferryd's), filled the same way; per run
//                    and cell QEMU's own live snapshot into a file on /dev/shm (qemu_snapshot.h):
//                    background-snapshot where QEMU takes it for this memory, else stop + save.
//                    Its pause is the guest's STOP to RESUME event by QEMU's timestamps; its total
//                    time is `migrate` sent to the file complete.
//
// Cells under load run redis-benchmark SETs (redis_load.h) against the guest's forwarded port from
// 2 s before the snapshot until after it, checked to be writing before and after.
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "bench/baselines/bare_qemu.h"
#include "bench/baselines/bare_spec.h"
#include "bench/baselines/qemu_snapshot.h"
#include "bench/drivers/clone_fixture.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/drivers/redis_load.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/files.h"
#include "qemu/guest_channel.h"
#include "testbed/page_reporting.h"
#include "testbed/redis_gaps.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kQmpTimeout(30000);
constexpr milliseconds kFillTimeout(900000);  // ballast of 3.6 GiB under TCG
constexpr milliseconds kSnapshotTimeout(600000);
constexpr milliseconds kLoadWarmIn(2000);
constexpr double kFullFraction = 0.9;
// What the default image holds after boot (kernel, initramfs, redis): about 95 MiB at 256 MiB.
constexpr uint64_t kBootDataMiB = 100;

struct Cell {
  std::string id;     // key prefix: "256i"
  std::string label;  // "256 MiB idle"
  uint64_t memory_mib;
  bool load;
};

const std::vector<Cell>& Cells() {
  static const std::vector<Cell> cells = {
      {"256i", "256 MiB idle", 256, false}, {"256l", "256 MiB under load", 256, true},
      {"1gi", "1 GiB idle", 1024, false},   {"1gl", "1 GiB under load", 1024, true},
      {"4gi", "4 GiB idle", 4096, false},   {"4gl", "4 GiB under load", 4096, true},
  };
  return cells;
}

std::string Key(const std::string& cell, const std::string& what) { return cell + "." + what; }

FigureSpec Row(const Cell& c, const std::string& what, const std::string& key, Goal goal,
               Unit unit = Unit::kMillis, bool ferry = true, bool qemu = true) {
  // Detail rows ("  what") are indented under the cell's rows.
  const bool detail = what.rfind("  ", 0) == 0;
  const std::string name = detail ? "  " + c.label + ": " + what.substr(2) : c.label + ": " + what;
  FigureSpec f =
      Figure(name, ferry ? Key(c.id, key) : "", qemu ? Key(c.id, key) : "", std::move(goal), unit);
  f.optional = true;  // a cell left out with --cases shows as skipped
  return f;
}

FigureSpec SizeRatio(const std::string& large, const std::string& small, const std::string& what) {
  FigureSpec f = FerrySideFigure("ferry pause 4 GiB vs 256 MiB, " + what, Key(large, "pause_ms"),
                                 Key(small, "pause_ms"), Goal::MaxRatio(1.2), Unit::kMillis);
  f.optional = true;
  return f;
}

// The MiB a ballast refusal says the guest can spare ("... can spare only N MiB"); 0 if none.
uint64_t SpareFromRefusal(const std::string& message) {
  const std::string marker = "can spare only ";
  const size_t at = message.find(marker);
  return at == std::string::npos ? 0 : std::strtoull(message.c_str() + at + marker.size(), 0, 10);
}

// Fills a guest to about kFullFraction of `memory_mib` with ballast through `ballast` (MiB to
// hold -> Ok or the guest's refusal), or to what it can spare; returns the MiB it holds.
Result<uint64_t> Fill(uint64_t memory_mib, const std::function<Status(uint64_t)>& ballast) {
  const uint64_t target = static_cast<uint64_t>(memory_mib * kFullFraction) - kBootDataMiB;
  Status st = ballast(target);
  if (st.ok()) return target;
  const uint64_t spare = SpareFromRefusal(st.message());
  if (spare == 0) return st;
  FERRY_RETURN_IF_ERROR(ballast(spare));
  return spare;
}

// One size's guests on both sides, booted and filled in set-up.
struct SizeGuests {
  uint64_t memory_mib = 0;
  std::string ferry_vm;
  uint16_t ferry_port = 0;
  uint64_t ferry_ballast_mib = 0;
  std::unique_ptr<BareQemu> bare;
  uint16_t bare_port = 0;
  uint64_t bare_ballast_mib = 0;
};

class SnapshotPause : public BenchEntry {
 public:
  EntryInfo Info() const override;
  Status SetUp(const BenchConfig& config) override;
  Result<Measurements> RunOnce(const Trial& trial) override;
  std::vector<std::string> Notes() const override;
  void TearDown() override {
    for (auto& [mib, g] : guests_) g.bare.reset();
    guests_.clear();
    StopAndSweep(ferryd_, "", {&dir_, &ram_dir_});
  }

 private:
  Status CheckHostMemory() const;
  Status BootSize(uint64_t mib);
  Result<Measurements> RunCell(const Trial& trial, const Cell& cell);
  struct Load {
    std::unique_ptr<RedisLoad> load;
    uint64_t before = 0;    // commands the guest's redis had processed right before the snapshot
    double sets_per_s = 0;  // during the warm-in
  };
  Status StartLoad(const Cell& cell, uint16_t port, Load& load);
  Result<Measurements> FerrySnapshot(const Trial& trial, const Cell& cell, SizeGuests& g);
  Result<Measurements> QemuSnapshot(const Trial& trial, const Cell& cell, SizeGuests& g);

  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> dir_;
  std::optional<ScratchDir> ram_dir_;
  std::vector<Cell> selected_;
  std::map<uint64_t, SizeGuests> guests_;
  QemuSnapshotKind kind_ = QemuSnapshotKind::kStopAndSave;
  std::string refusal_;  // QEMU's words when it refused background-snapshot
  std::string qemu_version_;
  // Ferry snapshots that failed, by cell, and the last one's error: a failure is a finding here
  // (its cell's rows lack the sample), not the end of the entry.
  std::map<std::string, int> failed_;
  std::map<std::string, std::string> failure_;
  // Cells that began while the host still reported freed memory after 90 s of waiting.
  int unsettled_ = 0;
  // Samples the table does not ratio by itself, by (side, key): QEMU's own size ratio, loads.
  std::map<std::pair<int, std::string>, std::vector<double>> kept_;
};

EntryInfo SnapshotPause::Info() const {
  EntryInfo info;
  info.name = "snapshot_pause";
  info.title =
      "live snapshot pause at 256 MiB, 1 GiB and 4 GiB of guest RAM ~90% full of data, idle and "
      "under a redis write load, next to QEMU's own live snapshot";
  info.ferry_side =
      "`ferry snapshot create VM --name S --json` of the running VM: pause_ms (ferryd's live "
      "pre-copy), and CLI spawn to exit (command to snapshot usable)";
  info.comparison_side =
      "bare QEMU, ferryd's command line: QEMU's own live snapshot into a file on /dev/shm "
      "(background-snapshot if QEMU takes it on this memory, else stop + save; the notes say "
      "which ran): STOP to RESUME event, and `migrate` to the file complete";
  info.ferry_label = "ferry (pre-copy)";
  info.comparison_label = "QEMU snapshot";
  for (const Cell& c : Cells()) {
    info.figures.push_back(Row(c, "pause", "pause_ms", Goal::MaxMillis(20)));
  }
  info.figures.push_back(SizeRatio("4gi", "256i", "idle"));
  info.figures.push_back(SizeRatio("4gl", "256l", "under load"));
  for (const Cell& c : Cells()) {
    info.figures.push_back(
        Row(c, "longest gap between the guest's redis PING replies", "gap_ms", Goal::None()));
  }
  for (const Cell& c : Cells()) {
    const bool goal = c.memory_mib == 1024;
    info.figures.push_back(Row(c, "total time (command to snapshot usable)", "total_ms",
                               goal ? Goal::MaxRatio(1.0, "<= 1.0x QEMU") : Goal::None()));
  }
  for (const Cell& c : Cells()) {
    info.figures.push_back(Row(c, "  ferry: RAM copy while running (ram_copy_ms)", "ram_copy_ms",
                               Goal::None(), Unit::kMillis, true, false));
    info.figures.push_back(Row(c, "  ferry: after the copy (total - ram_copy_ms)", "after_copy_ms",
                               Goal::None(), Unit::kMillis, true, false));
    info.figures.push_back(Row(c, "  ferry: of which RAM image sealed (ram_seal_ms)", "ram_seal_ms",
                               Goal::None(), Unit::kMillis, true, false));
    info.figures.push_back(Row(c, "  QEMU: query-migrate downtime", "downtime_ms", Goal::None(),
                               Unit::kMillis, false, true));
    info.figures.push_back(
        Row(c, "  RAM data in the snapshot", "data_mib", Goal::None(), Unit::kMiB));
  }
  return info;
}

Status SnapshotPause::CheckHostMemory() const {
  // Per size both sides' guests live for the whole entry; one snapshot at a time besides them.
  std::set<uint64_t> sizes;
  for (const Cell& c : selected_) sizes.insert(c.memory_mib);
  uint64_t need = 1024;
  for (uint64_t mib : sizes) need += 2 * mib;
  need += *sizes.rbegin();
  FERRY_ASSIGN_OR_RETURN(uint64_t available_kib, ProcKiB("/proc/meminfo", "MemAvailable"));
  if ((available_kib >> 10) < need) {
    return Status::ResourceExhausted("snapshot_pause needs about " + std::to_string(need) +
                                     " MiB of host memory for these "
                                     "cases (guests on both sides plus one snapshot), but only " +
                                     std::to_string(available_kib >> 10) +
                                     " MiB are available; run fewer --cases at once");
  }
  return Status::Ok();
}

Status SnapshotPause::SetUp(const BenchConfig& config) {
  for (const Cell& c : Cells()) {
    if (config.cases.empty() ||
        ("," + config.cases + ",").find("," + c.id + ",") != std::string::npos) {
      selected_.push_back(c);
    }
  }
  if (selected_.empty()) {
    return Status::InvalidArgument("--cases " + config.cases +
                                   " names no cell of snapshot_pause (256i, 256l, 1gi, 1gl, "
                                   "4gi, 4gl)");
  }
  FERRY_RETURN_IF_ERROR(CheckHostMemory());
  FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
  FERRY_RETURN_IF_ERROR(MakeBareQemuDirs(dir_, ram_dir_, "ferry-bench-pause"));
  qemu_version_ = guest_.qemu_version_line;
  FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config));
  std::set<uint64_t> sizes;
  for (const Cell& c : selected_) sizes.insert(c.memory_mib);
  for (uint64_t mib : sizes) FERRY_RETURN_IF_ERROR(BootSize(mib));
  return Status::Ok();
}

Status SnapshotPause::BootSize(uint64_t mib) {
  SizeGuests& g = guests_[mib];
  g.memory_mib = mib;
  g.ferry_vm = "p" + std::to_string(mib);
  FERRY_ASSIGN_OR_RETURN(BootedVm vm, BootVm(*ferryd_, g.ferry_vm, mib, guest_.guest_port));
  g.ferry_port = vm.host_port;
  if (guests_.size() == 1) {
    FERRY_RETURN_IF_ERROR(guest_.CheckSameCommandLine(vm.show, vm.host_port, dir_->path()));
  }
  auto ferry_ballast = [&](uint64_t n) -> Status {
    FERRY_ASSIGN_OR_RETURN(
        CliRun r, ferryd_->Cli({"vm", "ballast", g.ferry_vm, std::to_string(n)}, kFillTimeout));
    return r.ok() ? Status::Ok() : Status::FailedPrecondition(r.output);
  };
  FERRY_ASSIGN_OR_RETURN(g.ferry_ballast_mib, Fill(mib, ferry_ballast));

  const std::string name = "q" + std::to_string(mib);
  const std::string dir = dir_->Join(name);
  FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  FERRY_ASSIGN_OR_RETURN(g.bare_port, FreeLoopbackPort());
  BareLaunch launch = guest_.BareSpec(name, dir, ram_dir_->path(), mib, g.bare_port);
  FERRY_ASSIGN_OR_RETURN(g.bare, BareQemu::Launch(launch, dir + "/qemu.log"));
  FERRY_RETURN_IF_ERROR(g.bare->WaitForConsole(guest_.image.ready_marker, kVmBootTimeout).status());
  FERRY_ASSIGN_OR_RETURN(auto channel,
                         qemu::GuestChannel::Connect(launch.files.guest_socket, kQmpTimeout));
  auto bare_ballast = [&](uint64_t n) -> Status {
    return channel->Call("ballast", {{"mib", n}}, kFillTimeout).status();
  };
  FERRY_ASSIGN_OR_RETURN(g.bare_ballast_mib, Fill(mib, bare_ballast));
  FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, g.bare->Qmp(kQmpTimeout));
  kind_ = ChooseQemuSnapshotKind(*qmp, &refusal_);
  return Status::Ok();
}

Result<Measurements> SnapshotPause::RunOnce(const Trial& trial) {
  Measurements all;
  for (const Cell& cell : selected_) {
    auto m = RunCell(trial, cell);
    if (!m.ok()) return m.status().WithContext(cell.label);
    for (const auto& [key, v] : *m) {
      if (!trial.warm_up()) kept_[{static_cast<int>(trial.side), key}].push_back(v);
    }
    all.insert(m->begin(), m->end());
  }
  return all;
}

Status SnapshotPause::StartLoad(const Cell& cell, uint16_t port, Load& load) {
  FERRY_ASSIGN_OR_RETURN(
      load.load, RedisLoad::Start("", "127.0.0.1", dir_->Join("load-" + cell.id + ".log"), port));
  FERRY_ASSIGN_OR_RETURN(uint64_t c0, RedisCommandsProcessed("", "127.0.0.1", port));
  FERRY_RETURN_IF_ERROR(SleepUnlessInterrupted(kLoadWarmIn));
  FERRY_RETURN_IF_ERROR(load.load->CheckRunning());
  FERRY_ASSIGN_OR_RETURN(load.before, RedisCommandsProcessed("", "127.0.0.1", port));
  if (load.before <= c0 + 1) {
    return Status::Unavailable("redis-benchmark wrote nothing to the guest in " +
                               std::to_string(kLoadWarmIn.count()) + " ms");
  }
  load.sets_per_s = static_cast<double>(load.before - c0) * 1000.0 / kLoadWarmIn.count();
  return Status::Ok();
}

Result<Measurements> SnapshotPause::RunCell(const Trial& trial, const Cell& cell) {
  SizeGuests& g = guests_.at(cell.memory_mib);
  // The last cell deleted its snapshot (up to 4 GiB): the host reports that memory to its own
  // hypervisor in passes that stall every CPU here, which is no side's pause.
  if (!testbed::WaitForFreePageReportingToSettle()) ++unsettled_;
  const bool ferry = trial.side == Side::kFerry;
  const uint16_t port = ferry ? g.ferry_port : g.bare_port;
  Load load;
  if (cell.load) FERRY_RETURN_IF_ERROR(StartLoad(cell, port, load));
  FERRY_ASSIGN_OR_RETURN(auto pings, testbed::RedisReplyGaps::Start(port));
  auto m = ferry ? FerrySnapshot(trial, cell, g) : QemuSnapshot(trial, cell, g);
  if (!m.ok()) return m.status();
  FERRY_ASSIGN_OR_RETURN((*m)[Key(cell.id, "gap_ms")], pings->Stop());
  if (load.load) {
    // The guest must still serve the writes after the snapshot, or the figure is not worth much.
    FERRY_RETURN_IF_ERROR(load.load->CheckRunning().WithContext("after the snapshot"));
    FERRY_ASSIGN_OR_RETURN(uint64_t after, RedisCommandsProcessed("", "127.0.0.1", port));
    if (after <= load.before) {
      return Status::Unavailable("the load stopped writing at the snapshot");
    }
    (*m)[Key(cell.id, "load_sets_per_s")] = load.sets_per_s;
  }
  return m;
}

Result<Measurements> SnapshotPause::FerrySnapshot(const Trial& trial, const Cell& cell,
                                                  SizeGuests& g) {
  const std::string snap = "s" + std::to_string(trial.round) + "-" + cell.id;
  FERRY_ASSIGN_OR_RETURN(
      CliRun run,
      ferryd_->Cli({"snapshot", "create", g.ferry_vm, "--name", snap, "--json"}, kSnapshotTimeout));
  if (!run.ok()) {
    ++failed_[cell.id];
    failure_[cell.id] = run.ToStatus().message();
    return Measurements{{Key(cell.id, "failed"), 1}};
  }
  const json r = json::parse(run.output, nullptr, false);
  // Deleted at once: a 4 GiB image must not stay next to the next one.
  FERRY_ASSIGN_OR_RETURN(CliRun del, ferryd_->Cli({"snapshot", "delete", snap}, kVmCommandTimeout,
                                                  BenchFerryd::Wait::kEvenIfInterrupted));
  FERRY_RETURN_IF_ERROR(del.ToStatus());
  if (!r.is_object() || !r.contains("pause_ms")) {
    return Status::Internal("`ferry snapshot create --json` printed no pause_ms: " + run.output);
  }
  // To the µs by QEMU's STOP and RESUME events, as the comparison side's; a ferryd without
  // pause_us gives whole ms.
  const double pause_us = r.value("pause_us", 0.0);
  return Measurements{
      {Key(cell.id, "pause_ms"), pause_us > 0 ? pause_us / 1000.0 : r.value("pause_ms", 0.0)},
      {Key(cell.id, "total_ms"), DurationMs(run.elapsed)},
      {Key(cell.id, "ram_copy_ms"), r.value("ram_copy_ms", 0.0)},
      {Key(cell.id, "after_copy_ms"), DurationMs(run.elapsed) - r.value("ram_copy_ms", 0.0)},
      // Checksum, sync and mode 0400 of the image after the copy (0 from a ferryd without it).
      {Key(cell.id, "ram_seal_ms"), r.value("ram_seal_ms", 0.0)},
      {Key(cell.id, "data_mib"), BytesToMiB(r.value("ram_data_bytes", uint64_t{0}))},
  };
}

Result<Measurements> SnapshotPause::QemuSnapshot(const Trial& trial, const Cell& cell,
                                                 SizeGuests& g) {
  const std::string file =
      ram_dir_->Join("qemu-" + std::to_string(trial.round) + "-" + cell.id + ".snapshot");
  FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, g.bare->Qmp(kQmpTimeout));
  auto f = TakeQemuSnapshot(*qmp, kind_, file, kSnapshotTimeout);
  ::unlink(file.c_str());
  if (!f.ok()) return f.status().WithContext(std::string(QemuSnapshotKindName(kind_)));
  return Measurements{
      {Key(cell.id, "pause_ms"), f->pause_ms},
      {Key(cell.id, "total_ms"), f->total_ms},
      {Key(cell.id, "downtime_ms"), f->downtime_ms},
      {Key(cell.id, "data_mib"), BytesToMiB(f->file_bytes)},
  };
}

std::vector<std::string> SnapshotPause::Notes() const {
  std::vector<std::string> notes = {
      guest_.AcceleratorNote(),
      guest_.ImageNote(),
      "qemu: " + (qemu_version_.empty() ? std::string("version unknown") : qemu_version_),
      std::string("QEMU side ran: ") + QemuSnapshotKindName(kind_) +
          (kind_ == QemuSnapshotKind::kBackground
               ? " (QEMU accepted the capability for memory-backend-file share=on on tmpfs: "
                 "userfaultfd write-protect works on shmem on this kernel, for QEMU's own "
                 "mapping)"
               : " (QEMU refused background-snapshot: " + refusal_ + ")"),
      "ferry pause: pause_ms of `ferry snapshot create --json`: QEMU's query-migrate downtime "
      "(from QEMU's stop for the last pass, through the pre-switchover wait and the last "
      "pages and device state, to the stream's end) plus ferryd seeing `completed` and its "
      "`cont` answered; whole milliseconds",
      "QEMU pause: the guest's STOP to RESUME event, by QEMU's own event timestamps (us); "
      "QEMU's query-migrate downtime is shown too. background-snapshot: stop, device state into "
      "a buffer, write-protect of all RAM, resume; stop+save: the whole save",
      "total time: ferry: the CLI's wall time (live copy, RAM image checksummed, manifest, "
      "registered); QEMU: `migrate` (stop+save: `stop`) sent to query-migrate `completed` "
      "(the file on /dev/shm holds everything)",
      "fill: each guest got ferry-guest's ballast (xorshift64* bytes: nothing compresses) up to "
      "90% of RAM less ~100 MiB the image holds after boot, or what the guest could spare",
      "load: redis-benchmark -t set -r 100000 -d 256 -c 4 against the guest's forwarded port, "
      "started 2 s before the snapshot, checked to be writing before and after it",
      "longest gap: a client on the guest's forwarded port sends redis PING after PING (each "
      "when the last reply came) from just before the snapshot command to its end; the longest "
      "time between two replies is the stall the guest's clients saw, whatever stopped it "
      "(includes the user-networking round trip, ~1 ms)",
  };
  for (const auto& [mib, g] : guests_) {
    notes.push_back(std::to_string(mib) + " MiB guests: ballast " +
                    std::to_string(g.ferry_ballast_mib) + " MiB (ferry), " +
                    std::to_string(g.bare_ballast_mib) + " MiB (bare QEMU)");
  }
  for (const auto& [cell, n] : failed_) {
    notes.push_back("ferry snapshots that FAILED in cell " + cell + ": " + std::to_string(n) +
                    " (no pause sample for them); the last one: " + failure_.at(cell));
  }
  notes.push_back(
      "each cell waits first until the host's free page reporting to its own hypervisor has "
      "settled (testbed/page_reporting.h: it stalls every CPU here)" +
      (unsettled_ > 0 ? "; " + std::to_string(unsettled_) + " cells began before it had"
                      : std::string()));
  for (const char* what : {"i", "l"}) {
    auto large = kept_.find(
        {static_cast<int>(Side::kComparison), Key(std::string("4g") + what, "pause_ms")});
    auto small = kept_.find(
        {static_cast<int>(Side::kComparison), Key(std::string("256") + what, "pause_ms")});
    if (large == kept_.end() || small == kept_.end()) continue;
    const double ratio = *Median(large->second) / *Median(small->second);
    notes.push_back(std::string("QEMU's own pause 4 GiB / 256 MiB, ") +
                    (what[0] == 'i' ? "idle" : "under load") + ": " + std::to_string(ratio));
  }
  notes.push_back(
      "goals (issue 14): pause <= 20 ms at every size; ferry's 4 GiB / 256 MiB <= "
      "1.2; total time at 1 GiB <= 1.0x QEMU's");
  return notes;
}

}  // namespace

FERRY_BENCH_ENTRY("snapshot_pause", SnapshotPause);

}  // namespace ferry::bench

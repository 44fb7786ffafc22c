// Entry migration: live migration of a running guest between two hosts (network namespaces h1
// and h2), at 256 MiB and 1 GiB, idle and under a redis write load, three ways:
//
//   ferry:      `ferry migrate NAME --to h2 --json` between two ferryds: QEMU's precopy stream
//               carried over ferryd's mutual-TLS 1.3 peer link, with the VM's owner policy
//               checked against h2's certificate (ferry_migration.h).
//   native:     bare QEMU to bare QEMU over plaintext `tcp:` (bare_migration.h).
//   QEMU TLS:   bare QEMU to bare QEMU with QEMU's own tls-creds-x509 (bare_migration.h).
//
// All three: ferryd's QEMU command line (checked), a tap on the host's ferrybr0, downtime-limit
// 50 ms, max-bandwidth 2^40, auto-converge on. Per run and side, each of the four cells boots a
// fresh guest on h1, waits until its redis answers from the client namespace, starts the load
// (cells "under load": redis-benchmark SETs from the client namespace, running through the move),
// moves the guest to h2, checks that its redis answers there, and removes everything.
//
// Disk cells (256d, 256dl): the guest has a 1 GiB data disk on which redis keeps its append-only
// file, grown to ~512 MiB before the move (FillAppendOnlyFile); ferry moves it with its NBD
// mirror over a second TLS link, native with the same QMP commands over plain TCP, QEMU TLS with
// them and tls-creds=tls0 on the NBD server and client too. Their total time is the disk copy
// (mirror start to ready) plus QEMU's total-time.
//
// Figures: total time and downtime are the source QEMU's own query-migrate figures on every
// side; bytes on the wire are h1's uplink tx_bytes (and h1's IpExt OutOctets) before and after
// the move, read the same way on every side.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>

#include "bench/baselines/bare_migration.h"
#include "bench/baselines/bare_qemu.h"
#include "bench/baselines/bare_spec.h"
#include "bench/baselines/qemu_tls_creds.h"
#include "bench/drivers/ferry_migration.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/drivers/memory_phase.h"
#include "bench/drivers/redis_load.h"
#include "bench/harness/namespace_hosts.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/files.h"

namespace ferry::bench {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kAnswerTimeout(60000);  // redis answers on h1 before the move
constexpr milliseconds kAliveTimeout(30000);   // ... and on h2 after it
constexpr milliseconds kAliveAttempt(3000);
constexpr milliseconds kLoadWarmIn(3000);     // the load runs this long before the move
constexpr milliseconds kLoadAfterMove(1000);  // and must still be writing this long after
constexpr int kDowntimeLimitMs = 50;
constexpr uint16_t kFirstBarePort = 4400;
constexpr size_t kConsoleBytes = 16384;  // of a dead guest's console, searched for its cause

struct Cell {
  std::string id;     // key prefix and VM name part: "256i"
  std::string label;  // "256 MiB idle"
  uint64_t memory_mib;
  bool load;
  uint64_t disk_mib = 0;  // a data disk of this size, holding redis's append-only file
  uint64_t fill_mib = 0;  // which grows by this much before the move
};

const std::vector<Cell>& Cells() {
  static const std::vector<Cell> cells = {
      {"256i", "256 MiB idle", 256, false},
      {"256l", "256 MiB under load", 256, true},
      {"1gi", "1 GiB idle", 1024, false},
      {"1gl", "1 GiB under load", 1024, true},
      {"256d", "256 MiB + 1 GiB disk (512 MiB data) idle", 256, false, 1024, 512},
      {"256dl", "256 MiB + 1 GiB disk (512 MiB data) under load", 256, true, 1024, 512},
  };
  return cells;
}

std::string Key(const Cell& c, const std::string& what) { return c.id + "." + what; }
std::string FerryVmName(const Cell& c) { return "m" + c.id; }

FigureSpec Row(const Cell& c, const std::string& what, const std::string& key, Goal goal,
               Goal second_goal, Unit unit = Unit::kMillis) {
  FigureSpec f;
  f.name = c.label + ": " + what;
  f.ferry_key = f.comparison_key = Key(c, key);
  f.second_comparison_key = Key(c, key);
  f.goal = std::move(goal);
  f.second_goal = std::move(second_goal);
  f.unit = unit;
  f.optional = true;  // a cell left out with --cases shows as skipped
  return f;
}

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// What the runs of one side in one cell showed beyond the table's figures.
struct CellOutcome {
  int moves = 0;
  int died = 0;                   // redis did not answer on h2 after the move
  int load_stopped = 0;           // under load: no writes after the move although redis answered
  std::vector<double> load_rate;  // SETs/s during the warm-in before the move
  std::string last_words;         // why the last guest that died did (WhyDead)
};

// The lines of a dead guest's console that say what happened ("virtio_net ... is not a head!",
// "BUG: ...", "Kernel panic ..."), at most three, joined; the last line if none matches.
std::string WhyDead(const std::string& console) {
  static const char* kMarkers[] = {"not a head", "BUG:", "soft lockup", "Kernel panic", "ferryd:"};
  std::vector<std::string> picked;
  std::string last;
  std::stringstream in(console);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    last = line;
    for (const char* m : kMarkers) {
      if (line.find(m) == std::string::npos) continue;
      if (picked.size() < 3 && std::find(picked.begin(), picked.end(), line) == picked.end()) {
        picked.push_back(line.substr(0, 140));
      }
      break;
    }
  }
  if (picked.empty()) return last.empty() ? "(the console is empty)" : last.substr(0, 140);
  std::string out;
  for (const std::string& p : picked) out += (out.empty() ? "" : " | ") + p;
  return out;
}

class Migration : public BenchEntry {
 public:
  EntryInfo Info() const override {
    EntryInfo info;
    info.name = "migration";
    info.title =
        "live migration h1 -> h2 (network namespaces), 256 MiB and 1 GiB, idle and under a "
        "redis write load; downtime-limit 50 ms, max-bandwidth 2^40, auto-converge on, all sides";
    info.ferry_side =
        "`ferry migrate NAME --to h2 --json` between two ferryds (mutual TLS 1.3 peer link, "
        "owner policy --allow-label zone=b checked)";
    info.comparison_side =
        "bare QEMU -> bare QEMU, destination `-incoming tcp:10.77.0.2:PORT`, plaintext; QMP "
        "migrate-set-capabilities/-parameters, migrate, query-migrate";
    info.second_comparison_side =
        "bare QEMU -> bare QEMU with -object tls-creds-x509 (verify-peer=on), tls-creds=tls0 on "
        "both, destination `-incoming defer` + migrate-incoming";
    info.ferry_label = "ferry (TLS, policy)";
    info.comparison_label = "QEMU native tcp: (plaintext)";
    info.second_comparison_label = "QEMU tls-creds-x509";
    info.comparison_short_label = "native";
    info.second_comparison_short_label = "QEMU-TLS";
    for (const Cell& c : Cells()) {
      const bool disk = c.disk_mib != 0;
      info.figures.push_back(
          Row(c, disk ? "total time (disk copy + QEMU total-time)" : "total time (QEMU total-time)",
              "total_ms", Goal::MaxRatio(1.1, "<= 1.1x native"),
              disk ? Goal::None() : Goal::MaxRatio(0.8, "<= 0.8x QEMU TLS")));
      if (disk) {
        info.figures.push_back(Row(c, "  of which disk copy (mirror start to ready)",
                                   "disk_copy_ms", Goal::None(), Goal::None()));
        info.figures.push_back(Row(c, "  disk bytes copied (mirror job)", "disk_mib", Goal::None(),
                                   Goal::None(), Unit::kMiB));
        info.figures.push_back(Row(c, "  switchover: pre-switchover seen to migrate-continue",
                                   "switchover_ms", Goal::None(), Goal::None()));
        // Diagnostics of the memory phase after the copy (memory_phase.h), no goals.
        info.figures.push_back(
            Row(c, "  memory phase: QEMU total-time", "qemu_total_ms", Goal::None(), Goal::None()));
        for (const MemoryPhaseFigure& p : MemoryPhaseFigures()) {
          const bool mib = std::string(p.key).find("_mib") != std::string::npos;
          const bool ms = std::string(p.key).find("_ms") != std::string::npos;
          info.figures.push_back(Row(c, std::string("  memory phase: ") + p.row, p.key,
                                     Goal::None(), Goal::None(),
                                     mib  ? Unit::kMiB
                                     : ms ? Unit::kMillis
                                          : Unit::kCount));
        }
      }
      info.figures.push_back(Row(c, "downtime (QEMU downtime)", "downtime_ms",
                                 Goal::MaxRatio(1.0, "<= native"), Goal::None()));
      info.figures.push_back(Row(c, "bytes on the wire (h1 uplink tx)", "wire_mib", Goal::None(),
                                 Goal::None(), Unit::kMiB));
      info.figures.push_back(Row(c, "  of which h1's own IP stack", "ip_out_mib", Goal::None(),
                                 Goal::None(), Unit::kMiB));
      info.figures.push_back(
          Row(c, "start of move to running on h2 (wall)", "wall_ms", Goal::None(), Goal::None()));
    }
    return info;
  }

  Status SetUp(const BenchConfig& config) override {
    if (::geteuid() != 0) {
      return Status::FailedPrecondition(
          "the migration entry needs root: it builds network namespaces, bridges and taps");
    }
    for (const char* tool : {"ip", "openssl", "redis-benchmark", "redis-cli"}) {
      if (!OnPath(tool)) {
        return Status::NotFound(std::string(tool) +
                                " is not on PATH; the migration entry runs it (install it and "
                                "rerun)");
      }
    }
    for (const Cell& c : Cells()) {
      if (config.cases.empty() ||
          ("," + config.cases + ",").find("," + c.id + ",") != std::string::npos) {
        selected_.push_back(c);
      }
    }
    if (selected_.empty()) {
      return Status::InvalidArgument(
          "--cases " + config.cases +
          " names no cell of the migration entry (256i, 256l, 1gi, 1gl, 256d, 256dl)");
    }
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_RETURN_IF_ERROR(MakeBareQemuDirs(dir_, ram_dir_, "ferry-bench-mig"));
    qemu_version_ = guest_.qemu_version_line;

    NamespaceHosts::SweepStale();
    FERRY_RETURN_IF_ERROR(hosts_.Build());

    const std::string tls_dir = dir_->Join("qemu-tls");
    FERRY_RETURN_IF_ERROR(MakeDirs(tls_dir, 0700));
    FERRY_ASSIGN_OR_RETURN(QemuTlsCreds creds,
                           MakeQemuTlsCreds(tls_dir, NamespaceHosts::HostAddress(2)));
    bare_.guest = &guest_;
    bare_.hosts = &hosts_;
    bare_.dir = dir_->path();
    bare_.ram_dir = ram_dir_->path();
    bare_.tls = creds;
    bare_.downtime_limit_ms = kDowntimeLimitMs;

    std::vector<std::string> names;
    for (const Cell& c : Cells()) names.push_back(FerryVmName(c));
    FERRY_ASSIGN_OR_RETURN(fleet_, FerryFleet::Start(config, hosts_, dir_->Join("fleet"), names));
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    Measurements all;
    for (const Cell& cell : selected_) {
      auto m = RunCell(trial, cell);
      if (!m.ok()) return m.status().WithContext(cell.label);
      all.insert(m->begin(), m->end());
    }
    return all;
  }

  std::vector<std::string> Notes() const override {
    std::vector<std::string> notes = {
        guest_.AcceleratorNote(),
        guest_.ImageNote() +
            "; every side boots a fresh guest per cell and run, with ferryd's "
            "QEMU command line (checked against ferryd's qemu_argv), a tap on "
            "ferrybr0 and the address on the kernel command line (ferry.ip=)",
        "qemu: " + (qemu_version_.empty() ? std::string("version unknown") : qemu_version_),
        "hosts: network namespaces h1 (10.77.0.1) and h2 (10.77.0.2) on one bridge in a switch "
        "namespace (veth links, no rate limit); the client namespace (10.77.0.200) runs the load",
        "same settings on all sides: migrate-set-capabilities auto-converge=on x-ignore-shared=off,"
        " migrate-set-parameters downtime-limit=50 max-bandwidth=2^40; the destination keeps "
        "the source's VM generation id; TLS keys are EC P-256 on both TLS sides (ferry's fleet "
        "CA; a throwaway CA made with openssl for QEMU)",
        "load: redis-benchmark -t set -r 100000 -d 256 -c 4 from the client namespace against "
        "the guest, started 3 s before the move and checked to be still writing 1 s after it",
        "total time, downtime: the source QEMU's query-migrate total-time and downtime once "
        "completed (ferry: the qemu_total_ms and downtime_ms `ferry migrate --json` reports from "
        "the same query). QEMU's downtime ends when the source has sent the last bytes; the "
        "guest runs again only after the destination has loaded them (bare: autostart; ferry: "
        "after the finish handshake and `cont`)",
        "bytes on the wire: h1's uplink tx_bytes (every frame h1 sent to the switch) before and "
        "after the move, read in h1's namespace (/proc/net/dev); under load it includes the "
        "guest's redis replies while it was still on h1. 'of which h1's own IP stack': h1's "
        "IpExt OutOctets (/proc/net/netstat), i.e. the migration connection (ferryd's TLS link "
        "or QEMU's socket) without the bridged guest traffic",
        "start of move to running on h2 (wall): ferry: `ferry migrate` CLI spawn to exit (the "
        "destination QEMU's start, TLS connect, policy check, precopy, finish handshake, source "
        "deleted); bare: destination QEMU spawn to its query-status saying running",
        "goals: total time <= 1.1x native and <= 0.8x QEMU TLS; downtime <= native; ratio = "
        "ferry median / that side's median",
        "disk cells: a 1 GiB data disk (ferry: vm create --disk 1024M; native: a blank qcow2 "
        "each side, same command line, checked), redis's append-only file on it grown by 512 MiB "
        "(Lua EVALs of 8 MiB SETs) after boot on every side; ferry: NBD on a second link opened "
        "with the agents' mutual TLS, then QEMU's own TLS (tls-creds-psk, AES-128-GCM); "
        "native: the same QMP commands over plain TCP "
        "(nbd-server-start inet on h2, blockdev-add nbd inet, blockdev-mirror write-blocking, "
        "BLOCK_JOB_READY, migrate with pause-before-switchover, block-job-cancel at the "
        "pre-switchover event, migrate-continue); total = disk copy (mirror start to ready) + "
        "QEMU total-time; QEMU TLS: the same with tls-creds=tls0 on the NBD server and client",
    };
    if (!settings_[0].empty() && !settings_[1].empty()) {
      const std::string diff = SettingsDifference(settings_[0], settings_[1]);
      notes.push_back(
          "QEMU migration settings read back from the source (query-migrate-"
          "parameters/-capabilities), ferry vs native: " +
          (diff.empty() ? std::string("the same") : "differ in " + diff));
    }
    const EntryInfo info = Info();
    for (Side side : {Side::kFerry, Side::kComparison, Side::kSecondComparison}) {
      for (const Cell& cell : Cells()) {
        auto it = outcomes_.find({static_cast<int>(side), cell.id});
        if (it == outcomes_.end()) continue;
        notes.push_back(OutcomeNote(info.Label(side) + ", " + cell.label, it->second));
      }
    }
    return notes;
  }

  static std::string OutcomeNote(const std::string& what, const CellOutcome& o) {
    std::string line = what + ": " + std::to_string(o.moves) + " moves (warm-up included)";
    if (!o.load_rate.empty()) {
      line += ", load " + std::to_string(static_cast<int>(*Median(o.load_rate))) +
              " SETs/s median before the move";
    }
    line += "; guest dead on h2 after the move: " + std::to_string(o.died);
    if (o.load_stopped > 0) {
      line += "; load not writing after the move: " + std::to_string(o.load_stopped);
    }
    if (!o.last_words.empty()) line += "; the last one's console: " + o.last_words;
    return line;
  }

  void TearDown() override { StopFleetAndSweep(fleet_, hosts_, {&dir_, &ram_dir_}); }

 private:
  Result<std::unique_ptr<MigratingGuest>> Boot(const Trial& trial, const Cell& cell) {
    if (trial.side == Side::kFerry) {
      FERRY_ASSIGN_OR_RETURN(auto g, FerryMigratingGuest::Boot(*fleet_, FerryVmName(cell),
                                                               cell.memory_mib, cell.disk_mib));
      bool& checked = command_line_checked_[cell.disk_mib != 0];
      if (!checked) {
        FERRY_RETURN_IF_ERROR(bare_.CheckSameCommandLine(g->show(), cell.disk_mib));
        checked = true;
      }
      return std::unique_ptr<MigratingGuest>(std::move(g));
    }
    const bool tls = trial.side == Side::kSecondComparison;
    const uint16_t port = static_cast<uint16_t>(kFirstBarePort + (next_port_++ % 1000));
    FERRY_ASSIGN_OR_RETURN(
        auto g, BareMigratingGuest::Boot(bare_, tls ? BareTransport::kTls : BareTransport::kTcp,
                                         (tls ? "t" : "n") + cell.id, cell.memory_mib, port,
                                         cell.disk_mib));
    return std::unique_ptr<MigratingGuest>(std::move(g));
  }

  // Whether the guest's redis answers on h2 after the move; a guest that panicked says so on its
  // console (and a bare destination QEMU ends), so the wait stops early then.
  bool AnswersAfterMove(MigratingGuest& g, const MoveFigures& f) {
    if (f.destination_exited) return false;
    const auto deadline = std::chrono::steady_clock::now() + kAliveTimeout;
    while (std::chrono::steady_clock::now() < deadline && !Interrupted()) {
      if (WaitRedisAnswers(hosts_.Client(), g.address(), kAliveAttempt).ok()) return true;
      if (g.Console(2, kConsoleBytes).find("Kernel panic") != std::string::npos) {
        return false;
      }
    }
    return false;
  }

  Result<Measurements> RunCell(const Trial& trial, const Cell& cell) {
    CellOutcome& outcome = outcomes_[{static_cast<int>(trial.side), cell.id}];
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<MigratingGuest> guest, Boot(trial, cell));
    const std::string& client = hosts_.Client();
    FERRY_RETURN_IF_ERROR(
        WaitRedisAnswers(client, guest->address(), kAnswerTimeout).WithContext("on h1"));
    uint64_t aof_bytes = 0;
    if (cell.fill_mib != 0) {
      FERRY_ASSIGN_OR_RETURN(aof_bytes,
                             FillAppendOnlyFile(client, guest->address(), cell.fill_mib));
    }

    std::unique_ptr<RedisLoad> load;
    uint64_t before_move = 0;
    double rate = 0;
    if (cell.load) {
      FERRY_ASSIGN_OR_RETURN(
          load, RedisLoad::Start(client, guest->address(), dir_->Join("redis-benchmark.log")));
      auto c0 = RedisCommandsProcessed(client, guest->address());
      if (!c0.ok()) return c0.status().WithContext("as the load started, on h1");
      FERRY_RETURN_IF_ERROR(SleepUnlessInterrupted(kLoadWarmIn));
      FERRY_RETURN_IF_ERROR(load->CheckRunning());
      auto warm = RedisCommandsProcessed(client, guest->address());
      if (!warm.ok()) {
        return warm.status().WithContext("after " + std::to_string(kLoadWarmIn.count()) +
                                         " ms of load, on h1; the guest's console: " +
                                         WhyDead(guest->Console(1, kConsoleBytes)));
      }
      before_move = *warm;
      if (before_move <= *c0 + 1) {
        return Status::Unavailable("redis-benchmark wrote nothing to " + guest->address() + " in " +
                                   std::to_string(kLoadWarmIn.count()) + " ms");
      }
      rate = static_cast<double>(before_move - *c0) * 1000.0 / kLoadWarmIn.count();
      outcome.load_rate.push_back(rate);
    }

    FERRY_ASSIGN_OR_RETURN(HostTraffic t0, hosts_.Traffic(1));
    FERRY_ASSIGN_OR_RETURN(MoveFigures f, guest->MoveToH2());
    FERRY_ASSIGN_OR_RETURN(HostTraffic t1, hosts_.Traffic(1));
    ++outcome.moves;

    const bool alive = AnswersAfterMove(*guest, f);
    if (Interrupted()) return Status::Unavailable("interrupted");
    bool writing = false;
    if (!alive) {
      ++outcome.died;
      outcome.last_words = WhyDead(guest->Console(2, kConsoleBytes));
    } else if (load) {
      FERRY_RETURN_IF_ERROR(SleepUnlessInterrupted(kLoadAfterMove));
      auto after = RedisCommandsProcessed(client, guest->address());
      writing = load->CheckRunning().ok() && after.ok() && *after > before_move;
      if (!writing) ++outcome.load_stopped;
    }
    load.reset();

    Measurements m = {
        {Key(cell, "total_ms"), f.disk_copy_ms + f.qemu_total_ms},
        {Key(cell, "downtime_ms"), f.qemu_downtime_ms},
        {Key(cell, "wire_mib"), Mib(t1.uplink_tx_bytes - t0.uplink_tx_bytes)},
        {Key(cell, "ip_out_mib"), Mib(t1.ip_out_octets - t0.ip_out_octets)},
        {Key(cell, "wall_ms"), f.wall_ms},
        {Key(cell, "ram_mib"), Mib(f.ram_transferred_bytes)},
        {Key(cell, "alive"), alive ? 1.0 : 0.0},
    };
    AddMemoryPhaseMeasurements(f, Key(cell, ""), m);
    NoteSettings(trial.side, f);
    if (cell.disk_mib != 0) {
      m[Key(cell, "disk_copy_ms")] = f.disk_copy_ms;
      m[Key(cell, "switchover_ms")] = f.switchover_ms;
      m[Key(cell, "disk_mib")] = Mib(f.disk_bytes_copied);
      m[Key(cell, "qemu_total_ms")] = f.qemu_total_ms;
      m[Key(cell, "aof_mib")] = Mib(aof_bytes);
    }
    if (cell.load) {
      m[Key(cell, "load_sets_per_s")] = rate;
      m[Key(cell, "load_went_on")] = writing ? 1.0 : 0.0;
    }
    if (trial.side == Side::kFerry) {
      m[Key(cell, "ferryd_total_ms")] = f.ferry_total_ms;
      m[Key(cell, "ferry_link_mib")] = Mib(f.ferry_wire_bytes_sent);
    }
    return m;  // the guest goes here: removed from both hosts
  }

  // The first settings each side's source QEMU reported (ferry, native), for the notes.
  void NoteSettings(Side side, const MoveFigures& f) {
    const int i = side == Side::kFerry ? 0 : side == Side::kComparison ? 1 : -1;
    if (i >= 0 && settings_[i].empty() && !f.qemu_settings.empty()) settings_[i] = f.qemu_settings;
  }

  GuestSetup guest_;
  NamespaceHosts hosts_;
  nlohmann::json settings_[2] = {nlohmann::json::object(), nlohmann::json::object()};
  std::optional<ScratchDir> dir_;
  std::optional<ScratchDir> ram_dir_;
  BareMigrationContext bare_;
  std::unique_ptr<FerryFleet> fleet_;
  std::string qemu_version_;
  bool command_line_checked_[2] = {false, false};  // without, with a disk
  std::vector<Cell> selected_;  // the cells --cases picked, all by default
  int next_port_ = 0;
  // By (side, cell id).
  std::map<std::pair<int, std::string>, CellOutcome> outcomes_;
};

}  // namespace

FERRY_BENCH_ENTRY("migration", Migration);

}  // namespace ferry::bench

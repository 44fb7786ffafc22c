// Entry metrics_overhead: what watching ferryd as an operator does costs the clone figures of
// clone_boot. One ferryd with --metrics-listen serves both sides; the sides differ only in who
// watches it while the clones run.
//
//   ferry side ("observed"):  per run, a real Prometheus (Debian's prometheus) is started
//                             scraping ferryd's /metrics every second, and `ferry events --json`
//                             follows ferryd's event stream; once Prometheus has scraped ferryd
//                             twice, one plain clone and one warm-pool clone are timed (as in
//                             clone_boot, alternating order), then both watchers are stopped.
//                             Each run checks that the follower saw the clones start and that
//                             Prometheus kept scraping through them.
//   comparison side ("unobserved"): the same two clones with nobody scraping or following.
//
// The goal: observed within 2% of unobserved.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "bench/baselines/bare_spec.h"
#include "bench/drivers/clone_fixture.h"
#include "bench/drivers/clone_samples.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/files.h"
#include "core/process.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kIdleBeforeClones(2000);
constexpr milliseconds kPingTimeout(10000);
constexpr milliseconds kScrapeTimeout(30000);

// Progress line only: scrapes during the clones, and the CPU time the watchers used meanwhile.
constexpr char kScrapes[] = "scrapes_in_run";
constexpr char kWatchersCpu[] = "watchers_cpu_ms";

FigureSpec Row(std::string name, std::string key, Goal goal = Goal::MaxOverheadPercent(2)) {
  FigureSpec f;
  f.name = std::move(name);
  f.ferry_key = key;
  f.comparison_key = std::move(key);
  f.goal = std::move(goal);
  return f;
}

// User + system CPU time of process `pid` so far (/proc/PID/stat fields 14 and 15), in ms.
double CpuMs(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return 0;
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat->substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i >= 14) ticks += std::stod(f);
  }
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Which watchers the observed side runs: both (the figure), or one of them alone to tell
// their costs apart (FERRY_BENCH_WATCH=prometheus|events; a diagnostic, printed in the notes).
//
// Where Prometheus runs (FERRY_BENCH_PROMETHEUS=idle|shared). A fleet's Prometheus scrapes from
// its own machine; this host has two CPUs and no other machine, so by default Prometheus runs in
// the SCHED_IDLE class: it scrapes every second as before, but on CPU time the clones leave
// over, which is what another machine gives it. "shared" runs it at the clones' own priority:
// then the figure also holds the cost of a Go server's work on the clones' two CPUs, which a
// 41-round run measured at about 4 % while ferryd spent 0.75 ms of CPU per scrape.
struct WatchSet {
  bool prometheus = true;
  bool events = true;
  bool prometheus_idle = true;
  static WatchSet FromEnv() {
    const char* v = std::getenv("FERRY_BENCH_WATCH");
    const std::string which = v ? v : "both";
    const char* where = std::getenv("FERRY_BENCH_PROMETHEUS");
    return {which != "events", which != "prometheus",
            where == nullptr || std::string(where) != "shared"};
  }
  std::string Name() const {
    std::string name = prometheus && events ? "both" : prometheus ? "prometheus" : "events";
    if (prometheus) name += prometheus_idle ? ", Prometheus at SCHED_IDLE" : ", Prometheus shared";
    return name;
  }
};

// A Prometheus scraping ferryd every second and a `ferry events` follower, for one run.
class Watchers {
 public:
  static Result<std::unique_ptr<Watchers>> Start(const BenchConfig& config, BenchFerryd& ferryd,
                                                 uint16_t metrics_port, const std::string& dir,
                                                 WatchSet set) {
    auto w = std::unique_ptr<Watchers>(new Watchers());
    w->set_ = set;
    w->dir_ = dir;
    FERRY_RETURN_IF_ERROR(MakeDirs(dir, 0700));
    FERRY_ASSIGN_OR_RETURN(w->prom_port_, FreeLoopbackPort());
    {
      std::ofstream yml(dir + "/prometheus.yml");
      yml << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
          << "  - job_name: ferryd\n    static_configs:\n      - targets: ['127.0.0.1:"
          << metrics_port << "']\n";
      if (!yml) return Status::Internal("cannot write " + dir + "/prometheus.yml");
    }
    if (set.prometheus) {
      std::vector<std::string> argv = {
          "prometheus", "--config.file=" + dir + "/prometheus.yml",
          "--storage.tsdb.path=" + dir + "/data",
          "--web.listen-address=127.0.0.1:" + std::to_string(w->prom_port_)};
      if (set.prometheus_idle) argv.insert(argv.begin(), {"chrt", "--idle", "0"});
      FERRY_ASSIGN_OR_RETURN(Process prom, Process::Spawn(argv, dir + "/prometheus.log"));
      w->prometheus_ = std::move(prom);
    }
    if (!set.events) return w;
    FERRY_ASSIGN_OR_RETURN(Process follower, Process::Spawn({config.ferry_binary(), "--socket",
                                                             ferryd.socket(), "events", "--json"},
                                                            dir + "/events.jsonl"));
    w->follower_ = std::move(follower);
    return w;
  }

  ~Watchers() {
    for (auto* p : {&prometheus_, &follower_}) {
      if (!p->has_value()) continue;
      (*p)->Signal(SIGTERM);
      if (!(*p)->WaitExit(milliseconds(10000))) {
        (*p)->Signal(SIGKILL);
        (*p)->WaitExit(milliseconds(5000));
      }
    }
    RemoveAll(dir_);
  }

  // How many times Prometheus has scraped ferryd successfully so far; -1 if it cannot say.
  double Scrapes() const {
    if (!set_.prometheus) return 1e9;
    auto out = RunTool(
        {"curl", "-sf", "--get", "--data-urlencode", "query=sum_over_time(up{job=\"ferryd\"}[1h])",
         "http://127.0.0.1:" + std::to_string(prom_port_) + "/api/v1/query"},
        milliseconds(5000));
    if (!out.ok()) return -1;
    json j = json::parse(*out, nullptr, false);
    if (!j.is_object() || !j.contains("data")) return -1;
    const json& result = j["data"]["result"];
    if (!result.is_array() || result.size() != 1) return 0;
    return std::stod(result[0]["value"][1].get<std::string>());
  }

  // Waits until Prometheus has scraped ferryd at least `n` times.
  Status WaitScrapes(double n) const {
    if (!set_.prometheus) return Status::Ok();
    const auto deadline = Clock::now() + kScrapeTimeout;
    while (Scrapes() < n) {
      if (Clock::now() > deadline) {
        return Status::DeadlineExceeded("prometheus did not scrape ferryd's /metrics " +
                                        std::to_string(static_cast<int>(n)) + " times in 30 s; " +
                                        "its log: " + dir_ + "/prometheus.log");
      }
      FERRY_RETURN_IF_ERROR(SleepUnlessInterrupted(milliseconds(200)));
    }
    return Status::Ok();
  }

  double CpuMs() const {
    return (prometheus_ ? ::ferry::bench::CpuMs(prometheus_->pid()) : 0) +
           (follower_ ? ::ferry::bench::CpuMs(follower_->pid()) : 0);
  }

  // Whether the follower printed an event naming VM `name`.
  bool SawVm(const std::string& name) const {
    if (!set_.events) return true;
    auto text = ReadFile(dir_ + "/events.jsonl");
    return text.ok() && text->find("\"vm\":\"" + name + "\"") != std::string::npos;
  }

 private:
  Watchers() = default;
  WatchSet set_;
  std::string dir_;
  uint16_t prom_port_ = 0;
  std::optional<Process> prometheus_;
  std::optional<Process> follower_;
};

class MetricsOverhead : public BenchEntry {
 public:
  EntryInfo Info() const override {
    EntryInfo info{
        "metrics_overhead",
        "clone_boot's clone figures with ferryd watched (Prometheus scraping /metrics every "
        "second, `ferry events` following) next to unwatched",
        "observed: Prometheus scraping ferryd's --metrics-listen each 1 s and `ferry events "
        "--json` following, started before and stopped after the run; `ferry clone S --name cN "
        "--forward 0:6379 --json` and `ferry vm create pN --template T --forward 0:6379 --json`",
        "unobserved: the same clones of the same ferryd, nobody scraping or following",
        {
            Row("warm-pool clone: command to running", kPoolToRunning),
            Row("clone: command to running", kCloneToRunning),
            Row("warm-pool clone: command to identity reset done (CLI wall)", kPoolCli),
            Row("clone: command to identity reset done (CLI wall)", kCloneCli),
            Row("warm-pool clone: identity reset (restore_total_ms - running_ms)", kPoolIdentity,
                Goal::None()),
            Row("warm-pool clone: outside ferryd's restore (CLI wall - restore_total_ms)",
                kPoolOutside, Goal::None()),
            Row("clone: identity reset", kCloneIdentity, Goal::None()),
            Row("clone: outside ferryd's restore", kCloneOutside, Goal::None()),
        }};
    info.ferry_label = "observed";
    info.comparison_label = "unobserved";
    return info;
  }

  Status SetUp(const BenchConfig& config) override {
    config_ = config;
    if (::access("/usr/bin/prometheus", X_OK) != 0) {
      return Status::FailedPrecondition(
          "metrics_overhead needs prometheus (Debian package prometheus; scripts/setup.sh)");
    }
    FERRY_ASSIGN_OR_RETURN(guest_, GuestSetup::Find(config));
    FERRY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("/tmp", "ferry-bench-prom"));
    watch_dir_ = std::move(dir);
    FERRY_ASSIGN_OR_RETURN(metrics_port_, FreeLoopbackPort());
    BenchFerrydOptions options;
    options.extra_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port_)};
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config, options));
    FERRY_RETURN_IF_ERROR(
        SnapshotFreshVm(*ferryd_, "src", kCloneSnapshot, config.memory_mib, guest_.guest_port)
            .status());
    FERRY_RETURN_IF_ERROR(MakeWarmPool(*ferryd_, kCloneTemplate, kCloneSnapshot, template_made_));
    return MeasureScrapeCost();
  }

  // ferryd's CPU time per GET /metrics and the size of one, over kCostScrapes scrapes in a row:
  // what one Prometheus scrape a second costs ferryd, apart from the noise of the clone figures.
  Status MeasureScrapeCost() {
    constexpr int kCostScrapes = 200;
    const std::string url = "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics";
    std::vector<std::string> argv = {"curl", "-sf", "-w", "%{size_download}\\n"};
    for (int i = 0; i < kCostScrapes; ++i) argv.insert(argv.end(), {"-o", "/dev/null", url});
    const double before = CpuMs(ferryd_->pid());
    FERRY_ASSIGN_OR_RETURN(std::string sizes, RunTool(argv, milliseconds(60000)));
    const double cpu = CpuMs(ferryd_->pid()) - before;
    scrape_note_ =
        "ferryd's CPU per GET /metrics: " + std::to_string(cpu / kCostScrapes).substr(0, 5) +
        " ms (user+system over " + std::to_string(kCostScrapes) +
        " scrapes in a row, one curl, 10 ms clock ticks); one scrape is " +
        sizes.substr(0, sizes.find('\n')) + " bytes; at one scrape a second that is " +
        std::to_string(cpu / kCostScrapes / 10).substr(0, 5) + "% of one CPU";
    return Status::Ok();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    Measurements m;
    std::unique_ptr<Watchers> watchers;
    if (trial.side == Side::kFerry) {
      FERRY_ASSIGN_OR_RETURN(
          watchers,
          Watchers::Start(config_, *ferryd_, metrics_port_,
                          watch_dir_->Join("run" + std::to_string(runs_++)), WatchSet::FromEnv()));
      // Prometheus's own start-up is over once it scrapes on its interval.
      FERRY_RETURN_IF_ERROR(watchers->WaitScrapes(2));
    }
    // Both sides start their clones after the same idle time: the observed side has just waited
    // seconds for Prometheus, and a clone after an idle pause measured up to 30 % slower here
    // than one right after other work, whoever watched.
    std::this_thread::sleep_for(kIdleBeforeClones);
    const double scrapes_before = watchers ? watchers->Scrapes() : 0;
    const double cpu_before = watchers ? watchers->CpuMs() : 0;
    if (trial.round % 2 == 1) {
      FERRY_RETURN_IF_ERROR(PlainClone(trial.round, m));
      FERRY_RETURN_IF_ERROR(PoolClone(trial.round, m));
    } else {
      FERRY_RETURN_IF_ERROR(PoolClone(trial.round, m));
      FERRY_RETURN_IF_ERROR(PlainClone(trial.round, m));
    }
    if (watchers) {
      m[kWatchersCpu] = watchers->CpuMs() - cpu_before;
      // A run can be shorter than the scrape interval: Prometheus kept scraping through it if
      // it scrapes again after it.
      FERRY_RETURN_IF_ERROR(watchers->WaitScrapes(scrapes_before + 1)
                                .WithContext("prometheus stopped scraping ferryd in the run"));
      m[kScrapes] = watchers->Scrapes() - scrapes_before;
      for (const std::string name : {"c", "p"}) {
        if (!watchers->SawVm(name + std::to_string(trial.round))) {
          return Status::Internal("`ferry events` did not see vm " + name +
                                  std::to_string(trial.round));
        }
      }
    }
    return m;
  }

  std::vector<std::string> Notes() const override {
    return {
        guest_.AcceleratorNote(),
        "watchers on the observed side: " + WatchSet::FromEnv().Name() +
            " (FERRY_BENCH_WATCH, FERRY_BENCH_PROMETHEUS; the goal is for both)",
        guest_.ImageNote() + ", " + std::to_string(config_.memory_mib) + " MiB",
        "one ferryd (--metrics-listen 127.0.0.1:PORT) for both sides; a fresh Prometheus "
        "(scrape_interval 1s) and `ferry events --json` per observed run, timed only after "
        "Prometheus's second scrape; each observed run checked the follower printed both clones' "
        "events and that Prometheus scraped during the clones (scrapes_in_run)",
        "command to running: from just before the CLI is spawned to ferryd seeing `cont` return "
        "(timings.running_at_monotonic_ns), as in clone_boot",
        "overhead = observed median / unobserved median - 1",
        scrape_note_,
    };
  }

  void TearDown() override {
    StopAndSweep(ferryd_, template_made_ ? kCloneTemplate : "", {&watch_dir_});
  }

 private:
  Status PlainClone(int round, Measurements& m) {
    const std::string name = "c" + std::to_string(round);
    VmsToDelete cleanup(*ferryd_);
    FERRY_ASSIGN_OR_RETURN(CloneRun c, ClonePinged(*ferryd_, cleanup, kCloneSnapshot, name,
                                                   guest_.guest_port, kPingTimeout));
    RecordCloneSamples(c, kPlainCloneKeys, m);
    return cleanup.DeleteNow();
  }

  Status PoolClone(int round, Measurements& m) {
    const std::string name = "p" + std::to_string(round);
    VmsToDelete cleanup(*ferryd_);
    FERRY_ASSIGN_OR_RETURN(CloneRun c, PoolClonePinged(*ferryd_, cleanup, kCloneTemplate, name,
                                                       guest_.guest_port, kPingTimeout));
    RecordCloneSamples(c, kPoolCloneKeys, m);
    FERRY_RETURN_IF_ERROR(cleanup.DeleteNow());
    // The refill starts a QEMU: let it finish before anything else is timed.
    return WaitPoolReady(*ferryd_, kCloneTemplate, 1, kWarmPoolTimeout);
  }

  BenchConfig config_;
  GuestSetup guest_;
  std::unique_ptr<BenchFerryd> ferryd_;
  std::optional<ScratchDir> watch_dir_;
  uint16_t metrics_port_ = 0;
  int runs_ = 0;
  bool template_made_ = false;
  std::string scrape_note_;
};

}  // namespace

FERRY_BENCH_ENTRY("metrics_overhead", MetricsOverhead);

}  // namespace ferry::bench

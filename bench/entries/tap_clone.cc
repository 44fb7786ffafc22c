// Entry tap_clone: a clone onto a tap network, from the command to redis answering at the
// clone's own address, next to a clone on user networking, from the command to redis answering
// through its forward.
//
//   setup:           a segment of network namespaces (namespace_hosts.h: switch, host h1,
//                    client); one ferryd in h1. Two VMs booted there and snapshotted, then
//                    deleted: "tsrc" on tap networking (10.77.0.10/24 on h1's ferrybr0) and "usrc"
//                    on user networking. The same image and memory.
//   ferry side:      `ferry clone ts --name tN --net tap --ip 10.77.0.(20+N)/24 --json`, timed
//                    from just before the CLI is spawned until `redis-cli -h 10.77.0.(20+N) PING`
//                    run in the client namespace says PONG (polled from the CLI's exit). What the
//                    clone does beyond a user-networking one is all inside: the duplicate
//                    address probe (beside QEMU's start), the address in the identity reset,
//                    joining the bridge and the announcement.
//   comparison side: `ferry clone us --name uN --forward 0:6379 --json`, timed from just before
//                    the CLI is spawned until `redis-cli -h 127.0.0.1 -p PORT PING` run in h1's
//                    namespace says PONG. The same polling, through `ip netns exec` on both.
// Each clone is deleted after its run. Needs root.
#include <chrono>
#include <optional>
#include <thread>

#include "bench/drivers/ferry_ops.h"
#include "bench/harness/bench_ferryd.h"
#include "bench/harness/namespace_hosts.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "testbed/netns.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr char kTapSnapshot[] = "ts";
constexpr char kUserSnapshot[] = "us";
constexpr char kParentAddress[] = "10.77.0.10/24";
constexpr milliseconds kServeTimeout(60000);

constexpr char kTapToServing[] = "tap_clone_to_serving_ms";
constexpr char kTapCli[] = "tap_clone_cli_ms";
constexpr char kTapProbeWait[] = "tap_probe_wait_ms";
constexpr char kTapJoin[] = "tap_attach_and_announce_ms";
constexpr char kTapRestore[] = "tap_restore_total_ms";
constexpr char kTapIdentity[] = "tap_identity_ms";
constexpr char kTapAfterCli[] = "tap_cli_exit_to_serving_ms";
constexpr char kUserToServing[] = "user_clone_to_serving_ms";
constexpr char kUserRestore[] = "user_restore_total_ms";
constexpr char kUserIdentity[] = "user_identity_ms";
constexpr char kUserAfterCli[] = "user_cli_exit_to_serving_ms";
constexpr char kUserCli[] = "user_clone_cli_ms";

// `redis-cli -h HOST [-p PORT] PING` inside `netns` until PONG; when it answered.
Result<Clock::time_point> WaitServing(const std::string& netns, const std::string& host,
                                      uint16_t port) {
  const auto deadline = Clock::now() + kServeTimeout;
  std::string last;
  while (true) {
    std::vector<std::string> argv = {"redis-cli", "-h", host};
    if (port != 0) argv.insert(argv.end(), {"-p", std::to_string(port)});
    argv.push_back("PING");
    auto out = RunTool(testbed::InNamespace(netns, argv), milliseconds(5000));
    if (out.ok() && out->find("PONG") != std::string::npos) return Clock::now();
    if (Interrupted()) return Status::Unavailable("interrupted");
    last = out.ok() ? *out : out.status().message();
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded("redis at " + host + " did not answer PING within " +
                                      std::to_string(kServeTimeout.count() / 1000) + " s (" +
                                      last + ")");
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
}

class TapClone : public BenchEntry {
 public:
  EntryInfo Info() const override {
    return {
        "tap_clone",
        "a clone onto a tap network (its own address) next to a clone on user networking",
        "`ferry clone ts --name tN --net tap --ip 10.77.0.X/24`: CLI spawn to redis PING "
        "answered at 10.77.0.X from the client namespace",
        "`ferry clone us --name uN --forward 0:6379`: CLI spawn to redis PING answered through "
        "the forward (127.0.0.1:PORT in the host namespace)",
        {
            Figure("clone: command to serving at its own address vs user networking", kTapToServing,
                   kUserToServing, Goal::MaxRatio(1.2)),
            Figure("clone: CLI wall time", kTapCli, kUserCli),
            Figure("  restore: QEMU started to identity reset done (timings.restore_total_ms)",
                   kTapRestore, kUserRestore),
            Figure("  identity reset (timings.identity_ms)", kTapIdentity, kUserIdentity),
            Figure("  CLI exit to PONG", kTapAfterCli, kUserAfterCli),
            Figure("  tap: restore waited for the address probe (timings.address_probe_wait_ms)",
                   kTapProbeWait, ""),
            Figure("  tap: tap attached and address announced (timings.segment)", kTapJoin, ""),
        },
        "",
        "tap",
        "user net",
    };
  }

  Status SetUp(const BenchConfig& config) override {
    config_ = config;
    NamespaceHosts::SweepStale();
    FERRY_RETURN_IF_ERROR(hosts_.Build());
    BenchFerrydOptions options;
    options.netns = hosts_.Host(1);
    FERRY_ASSIGN_OR_RETURN(ferryd_, BenchFerryd::Start(config, options));
    const std::string memory = std::to_string(config.memory_mib);
    FERRY_ASSIGN_OR_RETURN(
        CliRun tap, ferryd_->Cli({"vm", "create", "tsrc", "--memory", memory, "--net", "tap",
                                  "--ip", kParentAddress, "--gateway",
                                  NamespaceHosts::HostAddress(1), "--wait-ready"},
                                 kVmBootTimeout));
    FERRY_RETURN_IF_ERROR(tap.ToStatus());
    FERRY_ASSIGN_OR_RETURN(CliRun user,
                           ferryd_->Cli({"vm", "create", "usrc", "--memory", memory, "--forward",
                                         "0:6379", "--wait-ready"},
                                        kVmBootTimeout));
    FERRY_RETURN_IF_ERROR(user.ToStatus());
    FERRY_RETURN_IF_ERROR(TakeSnapshot(*ferryd_, "tsrc", kTapSnapshot).status());
    FERRY_RETURN_IF_ERROR(TakeSnapshot(*ferryd_, "usrc", kUserSnapshot).status());
    // The sources would only compete for the CPU with what is timed.
    VmsToDelete sources(*ferryd_);
    sources.Add("tsrc");
    sources.Add("usrc");
    return sources.DeleteNow();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    Measurements m;
    const bool tap = trial.side == Side::kFerry;
    const std::string name = (tap ? "t" : "u") + std::to_string(trial.round);
    VmsToDelete cleanup(*ferryd_);
    cleanup.Add(name);
    const std::string address = "10.77.0." + std::to_string(20 + trial.round);
    std::vector<std::string> args = {"clone", tap ? kTapSnapshot : kUserSnapshot, "--name", name};
    if (tap) {
      args.insert(args.end(), {"--net", "tap", "--ip", address + "/24"});
    } else {
      args.insert(args.end(), {"--forward", "0:6379"});
    }
    args.push_back("--json");
    const auto start = Clock::now();
    FERRY_ASSIGN_OR_RETURN(CliRun run, ferryd_->Cli(args, kCloneTimeout));
    FERRY_RETURN_IF_ERROR(run.ToStatus());
    json clones = json::parse(run.output, nullptr, false);
    if (!clones.is_array() || clones.empty()) {
      return Status::Internal(run.Command() + " printed no clone: " + run.output.substr(0, 200));
    }
    const json& vm = clones[0];
    const json timings = vm.value("timings", json::object());
    Result<Clock::time_point> serving =
        tap ? WaitServing(hosts_.Client(), address, 0)
            : WaitServing(hosts_.Host(1), "127.0.0.1",
                          vm["spec"]["network"]["forwards"][0].value("host_port", 0));
    if (!serving.ok()) return serving.status().WithContext("clone " + name);
    const double to_serving = DurationMs(*serving - start);
    const double cli = DurationMs(run.elapsed);
    if (tap) {
      m[kTapToServing] = to_serving;
      m[kTapCli] = cli;
      m[kTapRestore] = timings.value("restore_total_ms", 0.0);
      m[kTapIdentity] = timings.value("identity_ms", 0.0);
      m[kTapAfterCli] = to_serving - cli;
      m[kTapProbeWait] = timings.value("address_probe_wait_ms", 0.0);
      const json segment = timings.value("segment", json::object());
      m[kTapJoin] = segment.value("attach_ms", 0.0) + segment.value("announce_ms", 0.0);
    } else {
      m[kUserToServing] = to_serving;
      m[kUserCli] = cli;
      m[kUserRestore] = timings.value("restore_total_ms", 0.0);
      m[kUserIdentity] = timings.value("identity_ms", 0.0);
      m[kUserAfterCli] = to_serving - cli;
    }
    FERRY_RETURN_IF_ERROR(cleanup.DeleteNow());
    return m;
  }

  std::vector<std::string> Notes() const override {
    return {
        "one ferryd in host namespace h1; clones of a snapshot of a ready " +
            std::to_string(config_.memory_mib) +
            " MiB default VM (the sources deleted before the runs)",
        "serving: redis-cli PING run through `ip netns exec` every 10 ms from the CLI's exit "
        "until PONG, on both sides",
        "the duplicate address probe (120 ms of listening, arp_probe.h) runs beside the tap "
        "clone's QEMU start, device state load and identity reset; the restore waits for what "
        "is left of it before the tap joins the bridge (address_probe.h)",
    };
  }

  void TearDown() override {
    if (ferryd_) ferryd_->Stop();
    ferryd_.reset();
    hosts_.Teardown();
  }

 private:
  BenchConfig config_;
  NamespaceHosts hosts_;
  std::unique_ptr<BenchFerryd> ferryd_;
};

FERRY_BENCH_ENTRY("tap_clone", TapClone);

}  // namespace
}  // namespace ferry::bench

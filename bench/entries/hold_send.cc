// Entry hold_send: `ferry hold send` of a 1 GiB hold between two namespace hosts, next to the
// same bytes copied over TLS 1.3 by `openssl s_server` / `s_client` between the same namespaces.
//
//   ferry side:      two ferryds (ferry_migration.h's FerryFleet: fleet CA, hosts h1 zone=a and
//                    h2 zone=b, peers both ways, an owner's policy allowing any host). Once, in
//                    SetUp: a 1 GiB VM booted on h1, given kBallastMiB of random bytes (`ferry vm
//                    ballast`), held (`ferry hold hs`), and one untimed send there and back.
//                    Per run: `ferry hold send hs --to h2 --json` on h1, timed from spawning the
//                    CLI to its exit (h2's store holds none of the hold's chunks: collected at the
//                    end of the previous run); then `ferry hold send hs --to h1 --json` on h2
//                    (second send of the same content: h1 still has its chunks, so only what h1
//                    lacks travels), then `ferry store gc` on h2.
//   comparison side: a file of the same number of random bytes as the first send's sealed chunks,
//                    copied from h1 to h2 by `openssl s_client -tls1_3` into `openssl s_server
//                    -tls1_3 -naccept 1` (mutual certificates, the hosts' fleet certificates),
//                    timed from spawning s_client until s_server's output counted every byte
//                    (a run that received fewer bytes fails).
//
// Figures: time for the bytes, and MiB/s (sealed-chunk MiB over the time); the second send's
// chunk MiB next to the first's.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

#include "bench/drivers/ferry_migration.h"
#include "bench/drivers/ferry_ops.h"
#include "bench/harness/namespace_hosts.h"
#include "bench/harness/runner.h"
#include "bench/harness/testbed.h"
#include "core/files.h"
#include "core/process.h"
#include "testbed/netns.h"

namespace ferry::bench {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMemoryMiB = 1024;
constexpr uint64_t kBallastMiB = kBallastMiBOf1GiB;
constexpr const char* kVm = "hs";
constexpr milliseconds kSendTimeout(900000);
constexpr milliseconds kCopyTimeout(900000);
constexpr int kTlsPort = 4433;

constexpr char kFerrySend[] = "ferry_send_ms";
constexpr char kFerryMibPerS[] = "ferry_send_mib_per_s";
constexpr char kFerryFirstMiB[] = "ferry_first_send_mib";
constexpr char kFerrySecondMiB[] = "ferry_second_send_mib";
constexpr char kFerryWireMiB[] = "ferry_first_wire_mib";
constexpr char kSslCopy[] = "openssl_copy_ms";
constexpr char kSslMibPerS[] = "openssl_mib_per_s";
constexpr char kSslMiB[] = "openssl_mib";

class HoldSend : public BenchEntry {
 public:
  EntryInfo Info() const override {
    FigureSpec second = Figure("MiB of chunks: second send of the same content vs the first",
                               kFerrySecondMiB, kFerryFirstMiB, Goal::MaxRatio(0.1), Unit::kMiB);
    second.comparison_on_ferry_side = true;
    return {"hold_send",
            "`ferry hold send` of a 1 GiB hold (" + std::to_string(kBallastMiB) +
                " MiB random) between namespace hosts, next to openssl s_client -> s_server "
                "(TLS 1.3) copying the same bytes",
            "`ferry hold send hs --to h2 --json` on h1: CLI spawn to exit",
            "openssl s_client -tls1_3 < FILE in h1 -> s_server -tls1_3 -naccept 1 in h2: "
            "s_client spawn until s_server's output counted every byte",
            {
                Figure("send: time for the hold's sealed chunks vs the same bytes", kFerrySend,
                       kSslCopy, Goal::MaxRatio(1.25, "MiB/s >= 0.8x (time ratio <= 1.25)")),
                Figure("MiB/s (shown as MiB)", kFerryMibPerS, kSslMibPerS, {}, Unit::kMiB),
                Figure("MiB carried: sealed chunks vs the file", kFerryFirstMiB, kSslMiB, {},
                       Unit::kMiB),
                Figure("MiB on the wire of the first send (h1's link counters)", kFerryWireMiB,
                       "", {}, Unit::kMiB),
                second,
            }};
  }

  Status SetUp(const BenchConfig& config) override {
    if (::geteuid() != 0) {
      return Status::FailedPrecondition("the hold_send entry needs root: network namespaces");
    }
    FERRY_ASSIGN_OR_RETURN(ScratchDir dir, ScratchDir::Create("/tmp", "ferry-bench-hsend"));
    dir_ = std::move(dir);
    NamespaceHosts::SweepStale();
    FERRY_RETURN_IF_ERROR(hosts_.Build());
    FERRY_ASSIGN_OR_RETURN(fleet_, FerryFleet::Start(config, hosts_, dir_->Join("fleet"), {kVm}));
    FERRY_ASSIGN_OR_RETURN(
        CliRun peer, fleet_->host(2).Cli({"peer", "add", "h1",
                                          NamespaceHosts::HostAddress(1) + ":" +
                                              std::to_string(FerryFleet::kPeerPort)},
                                         kVmCommandTimeout));
    FERRY_RETURN_IF_ERROR(peer.ToStatus());
    BenchFerryd& h1 = fleet_->host(1);
    // The hold goes there and back: a policy without destination rules (any fleet host).
    const std::string policy = dir_->Join("hs-any.policy");
    FERRY_RETURN_IF_ERROR(RunTool({config.ferry_binary(), "policy", "sign", "--key",
                                   dir_->Join("fleet/owner.key"), "--vm", kVm, "--out", policy},
                                  kVmCommandTimeout)
                              .status());
    FERRY_ASSIGN_OR_RETURN(CliRun created,
                           h1.Cli({"vm", "create", kVm, "--memory", std::to_string(kMemoryMiB),
                                   "--policy", policy, "--wait-ready"},
                                  kVmBootTimeout));
    FERRY_RETURN_IF_ERROR(created.ToStatus());
    FERRY_RETURN_IF_ERROR(GiveBallast(h1, kVm, kBallastMiB));
    FERRY_ASSIGN_OR_RETURN(CliRun held, h1.Cli({"hold", kVm}, kSendTimeout));
    FERRY_RETURN_IF_ERROR(held.ToStatus());
    // One untimed round trip: the byte count of the comparison, and warm page caches.
    FERRY_ASSIGN_OR_RETURN(Measurements first, RoundTrip());
    bytes_ = static_cast<uint64_t>(first[kFerryFirstMiB] * (1 << 20));
    file_ = dir_->Join("payload");
    return RunTool({"sh", "-c",
                    "head -c " + std::to_string(bytes_) + " /dev/urandom > " + file_},
                   kCopyTimeout)
        .status();
  }

  Result<Measurements> RunOnce(const Trial& trial) override {
    if (trial.side == Side::kFerry) return RoundTrip();
    return CopyWithOpenssl();
  }

  std::vector<std::string> Notes() const override {
    return {
        "hosts are network namespaces on one bridge (veth pairs); both sides cross the same "
        "links",
        "the hold: 1024 MiB guest, " + std::to_string(kBallastMiB) +
            " MiB of xorshift64* ballast; sealed chunks (zstd, AEAD) are what travels",
        "ferry: the receiver checks every chunk (AEAD open) and fsyncs before it confirms; "
        "openssl: s_server's output counted by head -c until every byte arrived",
        "second send: the hold sent back to h1, which kept the first copy's chunks (no gc there)",
        "ratio = ferry median / comparison median",
    };
  }

  void TearDown() override { StopFleetAndSweep(fleet_, hosts_, {&dir_}); }

 private:
  Result<json> SendJson(int from) {
    FERRY_ASSIGN_OR_RETURN(
        CliRun sent, fleet_->host(from).Cli({"hold", "send", kVm, "--to",
                                             "h" + std::to_string(3 - from), "--json"},
                                            kSendTimeout));
    FERRY_RETURN_IF_ERROR(sent.ToStatus());
    json out = json::parse(sent.output, nullptr, false);
    if (!out.is_object()) return Status::Internal("ferry hold send --json printed no JSON");
    out["elapsed_ms"] = DurationMs(sent.elapsed);
    return out;
  }

  Result<Measurements> RoundTrip() {
    FERRY_ASSIGN_OR_RETURN(HostTraffic t0, hosts_.Traffic(1));
    FERRY_ASSIGN_OR_RETURN(json first, SendJson(1));
    FERRY_ASSIGN_OR_RETURN(HostTraffic t1, hosts_.Traffic(1));
    FERRY_ASSIGN_OR_RETURN(json second, SendJson(2));
    // Collecting a 1 GiB hold's chunk files can outlast the CLI's 60 s wait for a reply on a
    // loaded host; ferryd goes on collecting, and the next gc waits for it.
    Status collected = Status::Internal("not run");
    for (int attempt = 0; attempt < 5 && !collected.ok(); ++attempt) {
      FERRY_ASSIGN_OR_RETURN(CliRun gc, fleet_->host(2).Cli({"store", "gc"}, kSendTimeout));
      collected = gc.ToStatus();
    }
    FERRY_RETURN_IF_ERROR(collected);
    const double ms = first.value("elapsed_ms", 0.0);
    const double mib = first.value("chunk_bytes_sent", 0.0) / (1 << 20);
    return Measurements{
        {kFerrySend, ms},
        {kFerryMibPerS, ms > 0 ? mib * 1000 / ms : 0},
        {kFerryFirstMiB, mib},
        {kFerrySecondMiB, second.value("chunk_bytes_sent", 0.0) / (1 << 20)},
        {kFerryWireMiB, static_cast<double>(t1.uplink_tx_bytes - t0.uplink_tx_bytes) / (1 << 20)},
    };
  }

  // The receiving end: s_server's stdin a FIFO nobody writes (it ends a session when its stdin
  // ends), its output counted by `head -c` until every byte arrived; then s_server is killed and
  // s_client, seeing the connection close, ends. The script exits when the bytes are in.
  std::string ServerScript(const std::string& address) const {
    const std::string fleet = dir_->Join("fleet");
    const std::string idle = dir_->Join("server-stdin");
    const std::string out = dir_->Join("server-out");
    return "rm -f " + idle + " " + out + " && mkfifo " + idle + " " + out + " && exec 3<>" + idle +
           " && { openssl s_server -accept " + address + " -naccept 1 -tls1_3 -cert " + fleet +
           "/tls2/host.crt -key " + fleet + "/tls2/host.key -CAfile " + fleet +
           "/ca/ca.crt -Verify 1 -quiet <&3 >" + out + " & S=$!; }; head -c " +
           std::to_string(bytes_) + " <" + out + " | wc -c > " + dir_->Join("server-count") +
           "; kill $S";
  }

  Result<Measurements> CopyWithOpenssl() {
    const std::string fleet = dir_->Join("fleet");
    const std::string address = NamespaceHosts::HostAddress(2) + ":" + std::to_string(kTlsPort);
    const std::string count_file = dir_->Join("server-count");
    ::unlink(count_file.c_str());
    FERRY_ASSIGN_OR_RETURN(
        Process server,
        Process::Spawn(testbed::InNamespace(hosts_.Host(2), {"sh", "-c", ServerScript(address)}),
                       dir_->Join("server.log")));
    // s_client retries until s_server listens (it starts in a few ms); -quiet implies -ign_eof:
    // it sends the whole file and ends when the server closes.
    const std::string client =
        "for i in $(seq 50); do openssl s_client -connect " + address + " -tls1_3 -quiet -cert " +
        fleet + "/tls1/host.crt -key " + fleet + "/tls1/host.key -CAfile " + fleet +
        "/ca/ca.crt < " + file_ + " >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1";
    const auto t0 = Clock::now();
    FERRY_ASSIGN_OR_RETURN(
        Process sender,
        Process::Spawn(testbed::InNamespace(hosts_.Host(1), {"sh", "-c", client}),
                       dir_->Join("client.log")));
    // Until the bytes are in; a client that gave up (no connection) ends the wait too.
    std::optional<ProcessExit> received;
    std::optional<ProcessExit> sent;
    while (!received && Clock::now() - t0 < kCopyTimeout) {
      received = server.WaitExit(milliseconds(20));
      if (!received && !sent) sent = sender.WaitExit(milliseconds(0));
      if (sent && !received && Clock::now() - t0 > kCopyTimeout / 100) break;
    }
    const auto t1 = Clock::now();
    if (!sent && !sender.WaitExit(std::chrono::seconds(10))) sender.Signal(SIGKILL);
    if (!received) {
      server.Signal(SIGKILL);
      KillProcessesUsing(dir_->path());
      return Status::DeadlineExceeded("openssl s_server did not receive the payload (client " +
                                      (sent ? sent->Describe() : std::string("still ran")) +
                                      "; see " + dir_->Join("client.log") + ")");
    }
    FERRY_ASSIGN_OR_RETURN(std::string counted, ReadFile(count_file));
    if (std::strtoull(counted.c_str(), nullptr, 10) != bytes_) {
      return Status::Internal("openssl s_server received " + counted + " bytes, not " +
                              std::to_string(bytes_) + " (see " + dir_->Join("server.log") + ")");
    }
    const double ms = DurationMs(t1 - t0);
    const double mib = static_cast<double>(bytes_) / (1 << 20);
    return Measurements{{kSslCopy, ms}, {kSslMibPerS, mib * 1000 / ms}, {kSslMiB, mib}};
  }

  NamespaceHosts hosts_;
  std::unique_ptr<FerryFleet> fleet_;
  std::optional<ScratchDir> dir_;
  uint64_t bytes_ = 0;
  std::string file_;
};

}  // namespace

FERRY_BENCH_ENTRY("hold_send", HoldSend);

}  // namespace ferry::bench

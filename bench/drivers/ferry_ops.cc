#include "bench/drivers/ferry_ops.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "bench/harness/testbed.h"
#include "core/files.h"

namespace ferry::bench {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

double DurationMs(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

namespace {

uint16_t FirstHostPort(const json& vm) {
  const json spec = vm.value("spec", json::object());
  const json net = spec.value("network", json::object());
  const json fwds = net.value("forwards", json::array());
  if (!fwds.is_array() || fwds.empty()) return 0;
  return fwds[0].value("host_port", uint16_t{0});
}

CloneRun CloneFrom(const json& vm, const CliRun& run) {
  CloneRun c;
  c.name = vm.value("name", "");
  c.cli_started = run.started;
  c.cli_ms = DurationMs(run.elapsed);
  c.vm = vm;
  c.host_port = FirstHostPort(vm);
  c.pid = vm.value("pid", -1);
  return c;
}

Status CheckCloned(const CloneRun& c) {
  const json t = c.vm.value("timings", json::object());
  for (const char* key : {"running_ms", "restore_total_ms"}) {
    if (!t.contains(key)) {
      return Status::Internal("clone " + c.name + " reports no timings." + key +
                              "; ferry's clone JSON changed?");
    }
  }
  if (c.host_port == 0) return Status::Internal("clone " + c.name + " has no forwarded host port");
  return Status::Ok();
}

// One attempt: connect, PING, read the reply. True on +PONG.
bool PingOnce(uint16_t port, milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const char ping[] = "PING\r\n";
    if (::send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof ping - 1)) {
      std::string got;
      const auto deadline = Clock::now() + timeout;
      while (Clock::now() < deadline && got.find("\r\n") == std::string::npos) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char buf[64];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;  // slirp accepts, then closes if nothing listens in the guest
        got.append(buf, static_cast<size_t>(n));
      }
      ok = got.rfind("+PONG", 0) == 0;
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

double CloneRun::Timing(const std::string& key) const {
  const json t = vm.value("timings", json::object());
  return t.contains(key) && t[key].is_number() ? t[key].get<double>() : 0.0;
}

std::optional<std::chrono::steady_clock::time_point> CloneRun::At(const std::string& key) const {
  const json t = vm.value("timings", json::object());
  if (!t.contains(key) || !t[key].is_number_integer()) return std::nullopt;
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t[key].get<int64_t>()));
}

double CloneRun::CommandToRunningMs() const {
  auto running = At("running_at_monotonic_ns");
  if (!running) return CommandToRunningBoundMs();
  return std::chrono::duration<double, std::milli>(*running - cli_started).count();
}

double CloneRun::CommandToBegunMs() const {
  auto begun = At("begun_at_monotonic_ns");
  return begun ? std::chrono::duration<double, std::milli>(*begun - cli_started).count() : 0;
}

double CloneRun::BegunToRunningMs() const {
  auto begun = At("begun_at_monotonic_ns");
  auto running = At("running_at_monotonic_ns");
  if (!begun || !running) return 0;
  return std::chrono::duration<double, std::milli>(*running - *begun).count();
}

bool CloneRun::FromWarmPool() const {
  return vm.value("origin", json::object()).value("warm_pool", false);
}

Status GiveBallast(BenchFerryd& ferryd, const std::string& vm, uint64_t mib) {
  FERRY_ASSIGN_OR_RETURN(CliRun ballast,
                         ferryd.Cli({"vm", "ballast", vm, std::to_string(mib)}, kBallastTimeout));
  return ballast.ToStatus();
}

Result<BootedVm> BootVm(BenchFerryd& ferryd, const std::string& name, uint64_t memory_mib,
                        uint16_t guest_port) {
  FERRY_ASSIGN_OR_RETURN(
      CliRun create, ferryd.Cli({"vm", "create", name, "--memory", std::to_string(memory_mib),
                                 "--forward", "0:" + std::to_string(guest_port), "--wait-ready"},
                                kVmBootTimeout));
  FERRY_RETURN_IF_ERROR(create.ToStatus());
  BootedVm vm;
  vm.name = name;
  vm.cli_ms = DurationMs(create.elapsed);
  FERRY_ASSIGN_OR_RETURN(vm.show,
                         ferryd.CliJson({"vm", "show", name, "--json"}, kVmCommandTimeout));
  vm.host_port = FirstHostPort(vm.show);
  return vm;
}

Result<json> TakeSnapshot(BenchFerryd& ferryd, const std::string& vm, const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(
      json r, ferryd.CliJson({"snapshot", "create", vm, "--name", name, "--json"}, kCloneTimeout));
  if (!r.contains("pause_ms")) {
    return Status::Internal("`ferry snapshot create --json` printed no pause_ms: " + r.dump());
  }
  return r;
}

Result<std::vector<CloneRun>> CloneSnapshot(BenchFerryd& ferryd, const std::string& snapshot,
                                            const std::vector<std::string>& names,
                                            uint16_t guest_port) {
  std::vector<std::string> args = {"clone", snapshot};
  for (const auto& n : names) {
    args.push_back("--name");
    args.push_back(n);
  }
  args.insert(args.end(), {"--forward", "0:" + std::to_string(guest_port), "--json"});
  FERRY_ASSIGN_OR_RETURN(CliRun run, ferryd.Cli(args, kCloneTimeout));
  FERRY_RETURN_IF_ERROR(run.ToStatus());
  auto j = json::parse(run.output, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array() || j.size() != names.size()) {
    return Status::Corruption("`" + run.Command() + "` did not print a list of " +
                              std::to_string(names.size()) +
                              " clones: " + run.output.substr(0, 300));
  }
  std::vector<CloneRun> clones;
  for (const auto& vm : j) {
    clones.push_back(CloneFrom(vm, run));
    FERRY_RETURN_IF_ERROR(CheckCloned(clones.back()));
  }
  return clones;
}

Result<CloneRun> CloneTemplate(BenchFerryd& ferryd, const std::string& tmpl,
                               const std::string& name, uint16_t guest_port) {
  FERRY_ASSIGN_OR_RETURN(CliRun run,
                         ferryd.Cli({"vm", "create", name, "--template", tmpl, "--forward",
                                     "0:" + std::to_string(guest_port), "--json"},
                                    kCloneTimeout));
  FERRY_RETURN_IF_ERROR(run.ToStatus());
  auto j = json::parse(run.output, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("`" + run.Command() +
                              "` printed no VM JSON: " + run.output.substr(0, 300));
  }
  CloneRun c = CloneFrom(j, run);
  FERRY_RETURN_IF_ERROR(CheckCloned(c));
  return c;
}

Status RedisPing(uint16_t port, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    if (PingOnce(port, milliseconds(2000))) return Status::Ok();
    if (Interrupted()) return Status::Unavailable("interrupted");
    if (Clock::now() >= deadline) {
      return Status::Unavailable("redis on 127.0.0.1:" + std::to_string(port) +
                                 " did not answer PING within " + std::to_string(timeout.count()) +
                                 " ms");
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

bool HasTemplateCommand(BenchFerryd& ferryd) {
  auto help = ferryd.Cli({"--help"}, kVmCommandTimeout);
  if (!help.ok() || !help->ok()) return false;
  std::istringstream in(help->output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("  template ", 0) == 0) return true;
  }
  return false;
}

Status WaitPoolReady(BenchFerryd& ferryd, const std::string& tmpl, int want, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int have = 0;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(json t,
                           ferryd.CliJson({"template", "show", tmpl, "--json"}, kVmCommandTimeout));
    have = t.value("pool_ready", 0);
    if (have >= want) return Status::Ok();
    if (Clock::now() >= deadline) break;
    FERRY_RETURN_IF_ERROR(SleepUnlessInterrupted(milliseconds(50)));
  }
  return Status::DeadlineExceeded("template " + tmpl + "'s warm pool has " + std::to_string(have) +
                                  " QEMU(s) ready, not " + std::to_string(want) + ", after " +
                                  std::to_string(timeout.count() / 1000) +
                                  " s; ferryd said: " + ferryd.LogTail());
}

Status SleepUnlessInterrupted(milliseconds duration) {
  const auto deadline = Clock::now() + duration;
  while (Clock::now() < deadline) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    std::this_thread::sleep_for(std::min(left, kInterruptCheck));
  }
  return Status::Ok();
}

void VmsToDelete::Add(const std::vector<std::string>& names) {
  names_.insert(names_.end(), names.begin(), names.end());
}

Status VmsToDelete::DeleteNow() {
  Status first;
  for (const auto& name : names_) {
    auto del = ferryd_.Cli({"vm", "delete", name, "--force"}, kVmCommandTimeout,
                           BenchFerryd::Wait::kEvenIfInterrupted);
    Status st = del.ok() ? del->ToStatus() : del.status();
    // A VM the run never got to create is not an error to delete.
    if (!st.ok() && st.message().find("does not exist") != std::string::npos) st = Status::Ok();
    if (first.ok() && !st.ok()) first = st;
  }
  names_.clear();
  return first;
}

Result<uint64_t> ProcKiB(const std::string& path, const std::string& key) {
  FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    uint64_t kib = 0;
    if (fields >> kib) return kib;
  }
  return Status::NotFound(path + " has no " + key + " line");
}

}  // namespace ferry::bench

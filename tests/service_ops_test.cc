// ferryd as an operator runs it: a real Prometheus (Debian's prometheus) scrapes ferryd's
// --metrics-listen while VMs are created, snapshotted, cloned and deleted, and the counters it
// reports through its own HTTP query API match what was done; `ferry events` sees each VM's
// creating -> running -> deleted in order, and a client resuming from a sequence number gets the
// rest without loss or repetition. And ferryd under a service manager: the notify protocol
// spoken to a NOTIFY_SOCKET the test holds, and log lines the journal would stamp.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <poll.h>

#include <algorithm>
#include <regex>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/background.h"
#include "harness/ferryd_fixture.h"
#include "harness/test_files.h"

namespace ferry::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ServiceOpsTest : public FerrydFixture {};

// The value Prometheus holds for `query` (an instant vector with one series), or -1.
double PromValue(uint16_t port, const std::string& query) {
  CommandResult r = RunCommand({"curl", "-sf", "--get", "--data-urlencode", "query=" + query,
                                "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query"});
  if (r.exit_code != 0) return -1;
  json j = json::parse(r.out, nullptr, false);
  if (!j.is_object() || j.value("status", "") != "success") return -1;
  const json& result = j["data"]["result"];
  if (!result.is_array() || result.size() != 1) return -1;
  return std::stod(result[0]["value"][1].get<std::string>());
}

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

TEST_F(ServiceOpsTest, PrometheusScrapesWhatWasDoneAndEventsResumeWithoutLoss) {
  if (::access("/usr/bin/prometheus", X_OK) != 0) {
    GTEST_SKIP() << "prometheus is not installed (Debian package prometheus; scripts/setup.sh)";
  }
  const uint16_t metrics_port = FreePort();
  StartFerryd({"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)});
  const std::string events_out = state_dir_ + "/events.jsonl";
  Background follower({std::string(FERRY_BUILD_DIR) + "/ferry", "--socket", socket_, "events", "--json", "--since", "0"},
                      events_out);

  const std::string prom_dir = state_dir_ + "/prometheus";
  std::filesystem::create_directories(prom_dir);
  {
    std::ofstream config(prom_dir + "/prometheus.yml");
    config << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ferryd\n"
           << "    static_configs:\n      - targets: ['127.0.0.1:" << metrics_port << "']\n";
  }
  const uint16_t prom_port = FreePort();
  Background prometheus({"prometheus", "--config.file=" + prom_dir + "/prometheus.yml",
                         "--storage.tsdb.path=" + prom_dir + "/data",
                         "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                        prom_dir + "/log");

  CreateRedisVm("web-1");
  ASSERT_EQ(Ferry({"snapshot", "create", "web-1", "--name", "s1"}).exit_code, 0);
  CommandResult cloned = Ferry({"clone", "s1", "--count", "1"});
  ASSERT_EQ(cloned.exit_code, 0) << cloned.err;
  std::vector<std::string> names = VmNames();
  ASSERT_EQ(names.size(), 2u);
  for (const auto& name : names) ASSERT_EQ(Ferry({"vm", "delete", name, "--force"}).exit_code, 0);

  // What ferryd says it did, read back through Prometheus.
  const std::vector<std::pair<std::string, double>> want = {
      {"ferry_operations_total{kind=\"create\",result=\"succeeded\"}", 1},
      {"ferry_operations_total{kind=\"snapshot\",result=\"succeeded\"}", 1},
      // `clone --count 1`: one clone operation around one per VM.
      {"ferry_operations_total{kind=\"clone\",result=\"succeeded\"}", 2},
      {"ferry_operation_duration_seconds_count{kind=\"create\",result=\"succeeded\"}", 1},
      {"ferry_snapshot_pause_seconds_count", 1},
      {"sum(ferry_clone_restore_seconds_count)", 1},
      {"ferry_vms{state=\"running\"}", 0},
      {"sum(ferry_vms)", 0},
  };
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  for (const auto& [query, value] : want) {
    double got = -1;
    while ((got = PromValue(prom_port, query)) != value &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(500ms);
    }
    EXPECT_EQ(got, value) << query << "; prometheus log: " << ReadFile(prom_dir + "/log");
  }
  EXPECT_GT(PromValue(prom_port, "ferry_ram_dir_free_bytes"), 0);

  // Events: each VM's life in order.
  const auto events_deadline = std::chrono::steady_clock::now() + 30s;
  std::vector<json> events;
  auto deleted_count = [&] {
    int n = 0;
    for (const auto& e : events) n += e.value("type", "") == "vm.deleted";
    return n;
  };
  while ((events = JsonLines(follower.Output()), deleted_count() < 2) &&
         std::chrono::steady_clock::now() < events_deadline) {
    std::this_thread::sleep_for(200ms);
  }
  follower.Stop();
  std::vector<std::string> web1;
  for (const auto& e : events) {
    // States and the delete; a vm.qemu_exited of the forced delete may come either side of it.
    const std::string type = e.value("type", "");
    if (e.value("vm", "") != "web-1" || (type != "vm.state" && type != "vm.deleted")) continue;
    web1.push_back(e.value("type", "") == "vm.deleted" ? "deleted" : e.value("state", ""));
  }
  auto at = [&](const std::string& s) {
    return std::find(web1.begin(), web1.end(), s) - web1.begin();
  };
  ASSERT_LT(at("creating"), static_cast<long>(web1.size())) << follower.Output();
  EXPECT_LT(at("creating"), at("running"));
  EXPECT_LT(at("running"), at("deleted"));
  EXPECT_EQ(at("deleted"), static_cast<long>(web1.size()) - 1);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]["seq"], i + 1);

  // A client that saw up to event N and reconnects gets N+1... exactly once each.
  const size_t n = events.size() / 2;
  const size_t rest = events.size() - n;
  CommandResult resumed = Ferry({"events", "--json", "--since", std::to_string(n), "--count",
                                 std::to_string(rest)});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  std::vector<json> tail = JsonLines(resumed.out);
  ASSERT_EQ(tail.size(), rest);
  for (size_t i = 0; i < rest; ++i) EXPECT_EQ(tail[i], events[n + i]);
}

// The service manager's end of sd_notify(3): a datagram socket at `path`, and what arrives.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" after `timeout`.
  std::string Next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, n) : "";
  }
  // Datagrams until one starts with `prefix` (returned) or `timeout` passes (""); the ones
  // before it go to `seen`.
  std::string WaitFor(const std::string& prefix, std::chrono::milliseconds timeout,
                      std::vector<std::string>* seen = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      std::string d = Next(std::max(left, std::chrono::milliseconds(1)));
      if (d.rfind(prefix, 0) == 0) return d;
      if (!d.empty() && seen) seen->push_back(d);
    }
    return "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

// Environment variables set for the ferryds this test forks, unset again when it ends.
class ScopedEnv {
 public:
  void Set(const std::string& name, const std::string& value) {
    ::setenv(name.c_str(), value.c_str(), 1);
    names_.push_back(name);
  }
  ~ScopedEnv() { Clear(); }
  void Clear() {
    for (const auto& n : names_) ::unsetenv(n.c_str());
    names_.clear();
  }

 private:
  std::vector<std::string> names_;
};

TEST_F(ServiceOpsTest, UnderAServiceManagerReadyComesAfterReAdoptionThenWatchdogAndStopping) {
  // A VM left running by a ferryd that died, as after a crash or an upgrade.
  StartFerryd();
  CreateRedisVm("web-1");
  KillFerryd();
  const std::string log = state_dir_ + "/ferryd.log";
  const std::string stamped_log = ReadFile(log);

  NotifySocket notify(state_dir_ + "/notify");
  ASSERT_TRUE(notify.bound());
  ScopedEnv env;
  env.Set("NOTIFY_SOCKET", state_dir_ + "/notify");
  env.Set("WATCHDOG_USEC", "1000000");
  // stderr goes to the journal: systemd sets JOURNAL_STREAM to its device and inode. ferryd's
  // stderr is the log file (harness), appended to, so the same inode.
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  env.Set("JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));

  ferryd_pid_ = SpawnFerryd({std::string(FERRY_BUILD_DIR) + "/ferryd", "--state-dir", state_dir_,
                             "--ram-dir", ram_dir_, "--socket", socket_},
                            log);
  ASSERT_GT(ferryd_pid_, 0);
  std::vector<std::string> before;
  const std::string ready = notify.WaitFor("READY=1", 60s, &before);
  ASSERT_NE(ready, "") << "no READY=1 in 60 s; ferryd log: " << ReadFile(log);
  // Nothing but the watchdog may come before it, and when it comes the API answers and the VM
  // it found is adopted, running.
  for (const auto& d : before) EXPECT_EQ(d, "WATCHDOG=1");
  EXPECT_NE(ready.find("STATUS=serving on " + socket_), std::string::npos) << ready;
  CommandResult show = Ferry({"vm", "show", "web-1", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(json::parse(show.out).value("state", ""), "running") << show.out;

  // WATCHDOG=1 every half interval: 0.5 s here; three within 3 s.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(notify.WaitFor("WATCHDOG=1", 3s), "WATCHDOG=1") << "watchdog " << i;
  }
  StopFerryd();
  EXPECT_EQ(notify.WaitFor("STOPPING=1", 5s), "STOPPING=1");

  // The journal stamps lines itself: the lines of this run carry no time; the first run's did.
  const std::string journal_lines = ReadFile(log).substr(stamped_log.size());
  static const std::regex kStamp(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d)");
  ASSERT_NE(journal_lines.find("info ferryd serving on"), std::string::npos) << journal_lines;
  std::istringstream lines(journal_lines);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_FALSE(std::regex_search(line, kStamp)) << line;
  }
  EXPECT_TRUE(std::regex_search(stamped_log, std::regex(R"((^|\n)\d{4}-\d\d-\d\dT)")))
      << stamped_log;

  // Back as the fixture expects it, to delete the VM.
  env.Clear();
  StartFerryd();
}

}  // namespace
}  // namespace ferry::testing

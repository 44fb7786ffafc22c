// ferryd as an operator runs it: a real Prometheus (Debian's prometheus) scrapes ferryd's
// --metrics-listen while VMs are created, snapshotted, cloned and deleted, and the counters it
// reports through its own HTTP query API match what was done; `ferry events` sees each VM's
// creating -> running -> deleted in order, and a client resuming from a sequence number gets the
// rest without loss or repetition.
#include <unistd.h>

#include <algorithm>
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

}  // namespace
}  // namespace ferry::testing

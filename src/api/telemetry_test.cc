#include "api/telemetry.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "api/api_server.h"

namespace ferry::api {
namespace {

using nlohmann::json;

std::vector<json> EventsOf(EventLog& log) {
  std::vector<json> out;
  for (const auto& l : log.Read(0, 1000, std::chrono::milliseconds(0)).lines) {
    out.push_back(json::parse(l));
  }
  return out;
}

vm::VmRecord Record(const std::string& name, vm::VmState state) {
  vm::VmRecord r;
  r.spec.name = name;
  r.state = state;
  return r;
}

TEST(TelemetryTest, VmStateChangesBecomeOrderedEventsOncePerChange) {
  metrics::Registry registry;
  EventLog log;
  Telemetry t(registry, log);
  t.VmPersisted(Record("web-1", vm::VmState::kCreating), false);
  t.VmPersisted(Record("web-1", vm::VmState::kBooting), false);
  t.VmPersisted(Record("web-1", vm::VmState::kBooting), false);  // saved again, same state
  t.VmPersisted(Record("web-1", vm::VmState::kRunning), false);
  t.VmPersisted(Record("web-1", vm::VmState::kRunning), true);
  auto events = EventsOf(log);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0]["state"], "creating");
  EXPECT_FALSE(events[0].contains("previous"));
  EXPECT_EQ(events[1]["state"], "booting");
  EXPECT_EQ(events[1]["previous"], "creating");
  EXPECT_EQ(events[2]["state"], "running");
  EXPECT_EQ(events[3]["type"], "vm.deleted");
  EXPECT_EQ(events[3]["vm"], "web-1");
  EXPECT_NE(registry.Render().find("ferry_vm_state_changes_total{state=\"running\"} 1\n"),
            std::string::npos);
}

TEST(TelemetryTest, FinishedOperationsAreCountedTimedAndTheirFiguresObserved) {
  metrics::Registry registry;
  EventLog log;
  Telemetry t(registry, log);
  Operation snap("op-1", "snapshot", "web-1@a");
  snap.Succeed({{"pause_ms", 120}});
  t.OperationFinished(snap, 1500);
  Operation clone("op-2", "clone", "web-1-c1");
  clone.Succeed({{"timings", {{"restore_total_ms", 40}}}, {"origin", {{"warm_pool", true}}}});
  t.OperationFinished(clone, 45);
  Operation mig("op-3", "migrate", "web-1");
  mig.Succeed({{"vm", "web-1"}, {"to", "h2"}, {"total_ms", 3000}, {"downtime_ms", 30},
               {"wire_bytes_sent", 300000000}});
  t.OperationFinished(mig, 3100);
  Operation bad("op-4", "create", "web-2");
  bad.Fail(Status::Unavailable("no"));
  t.OperationFinished(bad, 10);
  const std::string text = registry.Render();
  for (const char* want :
       {"ferry_operations_total{kind=\"snapshot\",result=\"succeeded\"} 1\n",
        "ferry_operations_total{kind=\"create\",result=\"failed\"} 1\n",
        "ferry_operation_duration_seconds_count{kind=\"migrate\",result=\"succeeded\"} 1\n",
        "ferry_snapshot_pause_seconds_sum 0.12", "ferry_clone_restore_seconds_count{warm_pool=\"true\"} 1\n",
        "ferry_migration_downtime_seconds_sum 0.03", "ferry_migration_wire_bytes_sum 300000000\n",
        "ferry_migration_total_seconds_count 1\n"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  auto events = EventsOf(log);
  ASSERT_EQ(events.size(), 5u);  // four finished, one migration.finished
  EXPECT_EQ(events[3]["type"], "migration.finished");
  EXPECT_EQ(events[4]["result"], "failed");
  EXPECT_EQ(events[4]["error"]["message"], "no");
}

TEST(TelemetryTest, QemuExitCauses) {
  ProcessExit killed{true, true, 9};
  ProcessExit code1{true, false, 1};
  EXPECT_EQ(ExitCause(Record("a", vm::VmState::kFailed), killed, ""), "signal");
  EXPECT_EQ(ExitCause(Record("a", vm::VmState::kFailed), code1, ""), "error");
  EXPECT_EQ(ExitCause(Record("a", vm::VmState::kStopped), code1, "guest-shutdown"),
            "guest_poweroff");
  EXPECT_EQ(ExitCause(Record("a", vm::VmState::kStopped), killed, ""), "stopped");
}

TEST(TelemetryTest, DirectoryBytesCountFilesAndFreeSpace) {
  std::string dir = ::testing::TempDir() + "telemetry-" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0700);
  {
    std::ofstream f(dir + "/ram");
    f << std::string(64 * 1024, 'x');
  }
  DirectoryBytes b = MeasureDirectory(dir);
  EXPECT_GE(b.used, 64 * 1024);
  EXPECT_GT(b.free, 0);
  ::unlink((dir + "/ram").c_str());
  ::rmdir(dir.c_str());
  EXPECT_EQ(MeasureDirectory(dir).used, 0);
}

TEST(TelemetryTest, EventStreamNoticesForRestartsAndLostEvents) {
  EXPECT_TRUE(StartEventStream(5, 10).notice.empty());
  EXPECT_EQ(StartEventStream(5, 10).since, 5u);
  EventStreamStart restarted = StartEventStream(50, 10);
  EXPECT_EQ(restarted.since, 0u);
  EXPECT_EQ(json::parse(restarted.notice)["type"], "events.restarted");
  json lost = json::parse(EventsLostLine(2, 7));
  EXPECT_EQ(lost["type"], "events.lost");
  EXPECT_EQ(lost["first_kept"], 7);
  EXPECT_NE(lost["message"].get<std::string>().find("events 3 to 6 are gone"), std::string::npos);
}

// Everything ferryd exposes passes Prometheus' own checker (promtool, Debian's prometheus).
TEST(TelemetryTest, PromtoolAcceptsTheExposition) {
  if (::access("/usr/bin/promtool", X_OK) != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; scripts/setup.sh)";
  }
  metrics::Registry registry;
  EventLog log;
  Telemetry t(registry, log);
  Operation op("op-1", "clone", "a\"b");
  op.Succeed({{"timings", {{"restore_total_ms", 40}}}});
  t.OperationFinished(op, 45);
  t.VmPersisted(Record("web-1", vm::VmState::kRunning), false);
  t.QemuExited(Record("web-1", vm::VmState::kFailed), ProcessExit{true, true, 9}, "");
  registry.AddCollector("ferry_vms", "VMs this ferryd has, by state", {"state"},
                        [] { return metrics::GaugeSamples{{{"running"}, 1}}; });
  registry.AddCollector("ferry_ram_dir_used_bytes", "RAM bytes", {},
                        [] { return metrics::GaugeSamples{{{}, 4096}}; });
  const std::string path = ::testing::TempDir() + "metrics-" + std::to_string(::getpid());
  {
    std::ofstream f(path);
    f << registry.Render();
  }
  const std::string cmd = "/usr/bin/promtool check metrics < " + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  ::unlink(path.c_str());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "promtool's lint findings";
}

}  // namespace
}  // namespace ferry::api

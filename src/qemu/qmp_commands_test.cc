#include "qemu/qmp_commands.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace ferry::qemu {
namespace {

using nlohmann::json;

// Answers every command with a scripted "return" value and records what was asked.
class FakeQmp : public QmpExecutor {
 public:
  explicit FakeQmp(json reply) : reply_(std::move(reply)) {}
  Result<json> Qmp(const std::string& command, const json& args,
                   std::chrono::milliseconds) override {
    calls.push_back({command, args});
    return reply_;
  }
  std::vector<std::pair<std::string, json>> calls;

 private:
  json reply_;
};

// Answers query-migrate with the next state of a script (the last one repeats).
class CancellingQmp : public QmpExecutor {
 public:
  explicit CancellingQmp(std::vector<std::string> states) : states_(std::move(states)) {}
  Result<json> Qmp(const std::string& command, const json&, std::chrono::milliseconds) override {
    calls.push_back(command);
    if (command != "query-migrate") return json::object();
    const std::string& s = states_.at(std::min(next_++, states_.size() - 1));
    return json{{"status", s}};
  }
  std::vector<std::string> calls;

 private:
  std::vector<std::string> states_;
  size_t next_ = 0;
};

TEST(QmpCommandsTest, MigrateCancelAndWaitPollsUntilTheMigrationIsNoLongerInProgress) {
  CancellingQmp qmp({"pre-switchover", "cancelling", "cancelled"});
  ASSERT_TRUE(MigrateCancelAndWait(qmp, std::chrono::milliseconds(10000)).ok());
  EXPECT_EQ(qmp.calls, (std::vector<std::string>{"migrate_cancel", "query-migrate",
                                                 "query-migrate", "query-migrate"}));

  CancellingQmp stuck({"cancelling"});
  ASSERT_TRUE(MigrateCancelAndWait(stuck, std::chrono::milliseconds(20)).ok());
  EXPECT_GT(stuck.calls.size(), 2u);  // gave up at the timeout rather than waiting forever
}

TEST(QmpCommandsTest, ASpareGetsItsRamAsNumaNodeZeroThenBuildsItsMachine) {
  FakeQmp qmp(json::object());
  ASSERT_TRUE(BindSpareRam(qmp, "/proc/self/fd/9/ram", 262136).ok());
  ASSERT_EQ(qmp.calls.size(), 3u);
  EXPECT_EQ(qmp.calls[0].first, "object-add");
  EXPECT_EQ(qmp.calls[0].second["mem-path"], "/proc/self/fd/9/ram");
  EXPECT_EQ(qmp.calls[0].second["size"], 262136ull * 1024);
  EXPECT_EQ(qmp.calls[0].second["share"], false);  // copy-on-write: the image is never written
  EXPECT_EQ(qmp.calls[1].first, "set-numa-node");
  EXPECT_EQ(qmp.calls[1].second["memdev"], "ram0");
  EXPECT_EQ(qmp.calls[2].first, "x-exit-preconfig");
}

TEST(QmpCommandsTest, QueryMigrateParsesStatusAndCounters) {
  FakeQmp qmp({{"status", "active"},
               {"ram",
                {{"total", 1000},
                 {"transferred", 400},
                 {"remaining", 600},
                 {"mbps", 12.5},
                 {"dirty-pages-rate", 3}}}});
  auto info = QueryMigrate(qmp);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(qmp.calls.at(0).first, "query-migrate");
  EXPECT_EQ(info->state, MigrationState::kActive);
  EXPECT_TRUE(info->InProgress());
  EXPECT_TRUE(info->has_ram);
  EXPECT_EQ(info->ram_remaining, 600u);
  EXPECT_EQ(info->ram_mbps, 12.5);

  auto none = ParseQueryMigrate(json::object());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->state, MigrationState::kNone);
  EXPECT_FALSE(none->InProgress());
  EXPECT_EQ(ParseQueryMigrate({{"status", "wibble"}})->state, MigrationState::kOther);
  auto failed = ParseQueryMigrate({{"status", "failed"}, {"error-desc", "disk full"}});
  EXPECT_EQ(failed->state, MigrationState::kFailed);
  EXPECT_EQ(failed->error_desc, "disk full");
}

TEST(QmpCommandsTest, WrongTypesFailTheCommandNamingTheMember) {
  auto bad = ParseQueryMigrate({{"status", 7}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "QMP query-migrate reply: member \"status\" must be a string, not number");
  EXPECT_FALSE(ParseQueryMigrate({{"status", "active"}, {"ram", {{"total", "many"}}}}).ok());
  EXPECT_FALSE(ParseQueryMigrate({{"status", "active"}, {"ram", {{"remaining", -1}}}}).ok());
  EXPECT_FALSE(ParseQueryMigrate({{"status", "active"}, {"ram", 5}}).ok());
  EXPECT_FALSE(ParseQueryMigrate(json::array()).ok());

  FakeQmp qmp({{"running", "yes"}, {"status", "running"}});
  auto status = QueryStatus(qmp);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.status().message().find("\"running\" must be a boolean"), std::string::npos);
  EXPECT_TRUE(ParseQueryStatus({{"running", false}, {"status", "paused"}}).ok());
  EXPECT_FALSE(ParseVmGenerationId({{"guid", 1}}).ok());
  EXPECT_EQ(*ParseVmGenerationId({{"guid", "abc"}}), "abc");
}

TEST(QmpCommandsTest, MigrationEventNamesTheStateEntered) {
  EXPECT_EQ(*ParseMigrationEvent({{"status", "pre-switchover"}}), MigrationState::kPreSwitchover);
  EXPECT_EQ(*ParseMigrationEvent({{"status", "completed"}}), MigrationState::kCompleted);
  EXPECT_EQ(*ParseMigrationEvent({{"status", "wibble"}}), MigrationState::kOther);
  EXPECT_FALSE(ParseMigrationEvent(json::object()).ok());
  EXPECT_FALSE(ParseMigrationEvent({{"status", 3}}).ok());
  EXPECT_FALSE(ParseMigrationEvent("completed").ok());
}

// Refuses `cont` as QEMU does between a migration's "completed" and its leaving finish-migrate,
// `refusals` times, then takes it.
class FinishingMigrationQmp : public QmpExecutor {
 public:
  explicit FinishingMigrationQmp(int refusals, std::string error = "Migration is not finalized yet")
      : refusals_(refusals), error_(std::move(error)) {}
  Result<json> Qmp(const std::string& command, const json&, std::chrono::milliseconds) override {
    ++calls;
    if (command == "cont" && refusals_-- > 0) {
      return Status::FailedPrecondition("QMP cont: GenericError: " + error_);
    }
    return json::object();
  }
  int calls = 0;

 private:
  int refusals_;
  std::string error_;
};

TEST(QmpCommandsTest, ContWaitsOutAMigrationThatIsNotFinalizedYet) {
  FinishingMigrationQmp finishing(3);
  EXPECT_TRUE(Cont(finishing).ok());
  EXPECT_EQ(finishing.calls, 4);
  // Any other refusal is returned at once.
  FinishingMigrationQmp broken(1, "Resetting the Virtual Machine is required");
  Status st = Cont(broken);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(broken.calls, 1);
  // One that never ends is given up after kContAfterMigrationWait.
  FinishingMigrationQmp stuck(1 << 30);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(Cont(stuck).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, kContAfterMigrationWait);
}

TEST(QmpCommandsTest, QueryVersionGivesTheRunningRelease) {
  json reply = json::parse(R"({"qemu": {"micro": 2, "minor": 0, "major": 10},
                               "package": "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"})");
  auto v = ParseQueryVersion(reply);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(*v, (QemuVersion{10, 0, 2}));
  EXPECT_FALSE(ParseQueryVersion(json::parse(R"({"qemu": {"micro": 2, "minor": 0}})")).ok());
  EXPECT_FALSE(
      ParseQueryVersion(json::parse(R"({"qemu": {"micro": 2, "minor": 0, "major": 0}})")).ok());
  EXPECT_FALSE(
      ParseQueryVersion(json::parse(R"({"qemu": {"micro": 2, "minor": 99999, "major": 7}})")).ok());
  EXPECT_FALSE(ParseQueryVersion(json::parse(R"({"qemu": "7.2.22"})")).ok());
}

TEST(QmpCommandsTest, QueryBlockGivesTheActiveNodeOfOneDevice) {
  // Trimmed from QEMU 7.2 after a blockdev-snapshot onto node top-disk-1.
  const json reply = json::array(
      {{{"device", ""}, {"qdev", "cd0"}, {"locked", false}, {"removable", true}},
       {{"device", ""},
        {"qdev", "/machine/peripheral/vd0/virtio-backend"},
        {"inserted", {{"node-name", "top-disk-1"}, {"file", "/dev/fdset/0"}, {"ro", false}}}}});
  FakeQmp qmp(reply);
  auto node = QueryBlockNodeName(qmp, "vd0");
  ASSERT_TRUE(node.ok()) << node.status().message();
  EXPECT_EQ(*node, "top-disk-1");
  EXPECT_EQ(qmp.calls.at(0).first, "query-block");

  auto empty = ParseBlockNodeName(reply, "cd0");
  EXPECT_EQ(empty.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(ParseBlockNodeName(reply, "vd").status().code(), Status::Code::kNotFound);
  // QEMU's reply is data from a process a guest may have subverted: wrong shapes fail the call.
  EXPECT_EQ(ParseBlockNodeName(json::object(), "disk0").status().code(), Status::Code::kCorruption);
  EXPECT_FALSE(ParseBlockNodeName(json::array({5}), "disk0").ok());
  EXPECT_FALSE(ParseBlockNodeName(json::array({{{"device", 5}}}), "disk0").ok());
  EXPECT_FALSE(
      ParseBlockNodeName(json::array({{{"device", "disk0"}, {"inserted", "x"}}}), "disk0").ok());
  EXPECT_FALSE(ParseBlockNodeName(
                   json::array({{{"device", "disk0"}, {"inserted", {{"node-name", 1}}}}}), "disk0")
                   .ok());
}

TEST(QmpCommandsTest, BlockNodeNamesAreReadFromAFlatList) {
  FakeQmp qmp(json::array({{{"node-name", "top-disk-1"}, {"drv", "qcow2"}},
                           {{"node-name", "top-disk-1-file"}, {"drv", "file"}}}));
  auto names = QueryBlockNodeNames(qmp);
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_EQ(*names, (std::vector<std::string>{"top-disk-1", "top-disk-1-file"}));
  EXPECT_EQ(qmp.calls.at(0).first, "query-named-block-nodes");
  EXPECT_EQ(qmp.calls.at(0).second, (json{{"flat", true}}));
  EXPECT_EQ(ParseBlockNodeNames(json::object()).status().code(), Status::Code::kCorruption);
  EXPECT_FALSE(ParseBlockNodeNames(json::array({5})).ok());
  EXPECT_FALSE(ParseBlockNodeNames(json::array({{{"node-name", 1}}})).ok());
  EXPECT_FALSE(ParseBlockNodeNames(json::array({{{"drv", "file"}}})).ok());
}

TEST(QmpCommandsTest, CommandsSendTheirArguments) {
  FakeQmp qmp(json::object());
  ASSERT_TRUE(MigrateIncoming(qmp, "fd:x").ok());
  ASSERT_TRUE(SetMigrationCapability(qmp, "x-ignore-shared", true).ok());
  ASSERT_TRUE(Cont(qmp).ok());
  EXPECT_EQ(qmp.calls[0].first, "migrate-incoming");
  EXPECT_EQ(qmp.calls[0].second, (json{{"uri", "fd:x"}}));
  EXPECT_EQ(qmp.calls[1].second["capabilities"][0]["capability"], "x-ignore-shared");
  EXPECT_EQ(qmp.calls[2].first, "cont");
}

TEST(QmpCommandsTest, MigrationCapabilitiesAndParametersAreSentAsQemuNamesThem) {
  FakeQmp qmp(json::object());
  ASSERT_TRUE(
      SetMigrationCapabilities(qmp, {{"auto-converge", true}, {"x-ignore-shared", false}}).ok());
  ASSERT_TRUE(SetMigrationParameters(qmp, {50, int64_t{1} << 40}).ok());
  EXPECT_EQ(qmp.calls[0].first, "migrate-set-capabilities");
  EXPECT_EQ(qmp.calls[0].second, (json{{"capabilities",
                                        {{{"capability", "auto-converge"}, {"state", true}},
                                         {{"capability", "x-ignore-shared"}, {"state", false}}}}}));
  EXPECT_EQ(qmp.calls[1].first, "migrate-set-parameters");
  EXPECT_EQ(qmp.calls[1].second,
            (json{{"downtime-limit", 50}, {"max-bandwidth", int64_t{1} << 40}}));
}

TEST(QmpCommandsTest, QmpLinesAreClassified) {
  auto ret = ParseQmpLine(R"({"return": {"status": "running"}, "id": 4})");
  ASSERT_TRUE(ret.ok());
  EXPECT_EQ(ret->kind, QmpLine::Kind::kReturn);
  EXPECT_EQ(*ret->id, 4u);
  auto err = ParseQmpLine(R"({"error": {"class": "GenericError", "desc": "no"}, "id": 5})");
  ASSERT_TRUE(err.ok());
  EXPECT_EQ(err->kind, QmpLine::Kind::kError);
  EXPECT_EQ(err->error_desc, "no");
  auto ev = ParseQmpLine(R"({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}})");
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->event, "STOP");
  EXPECT_EQ(ParseQmpLine(R"({"QMP": {"version": {}}})")->kind, QmpLine::Kind::kGreeting);

  EXPECT_FALSE(ParseQmpLine(R"({"error": "no", "id": 5})").ok());
  EXPECT_FALSE(ParseQmpLine(R"({"event": 3})").ok());
  EXPECT_FALSE(ParseQmpLine(R"({"return": {}, "id": "4"})").ok());
  EXPECT_FALSE(ParseQmpLine(R"({"hello": 1})").ok());
  EXPECT_FALSE(
      ParseQmpLine(R"({"return": )" + std::string(100000, '[') + std::string(100000, ']') + "}")
          .ok());
}

}  // namespace
}  // namespace ferry::qemu

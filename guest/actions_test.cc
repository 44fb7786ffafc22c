#include "guest/actions.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "guest/protocol.h"

namespace ferry::guest {
namespace {

using nlohmann::json;

class FakeGuestSystem : public GuestSystem {
 public:
  std::optional<std::string> ReadFile(const std::string& path) override {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> ListDir(const std::string& path) override {
    std::vector<std::string> names;
    std::string prefix = path + "/";
    for (const auto& [file, unused] : files) {
      if (file.rfind(prefix, 0) != 0) continue;
      std::string rest = file.substr(prefix.size());
      std::string name = rest.substr(0, rest.find('/'));
      if (names.empty() || names.back() != name) names.push_back(name);
    }
    return names;
  }
  std::string Hostname() override { return hostname; }
  std::string KernelRelease() override { return "6.1.0-56-amd64"; }
  bool IsInit() override { return is_init; }

  std::map<std::string, std::string> files = {
      {"/proc/uptime", "12.345 10.00\n"},
      {"/etc/machine-id", "0123456789abcdef0123456789abcdef\n"},
      {"/proc/sys/kernel/random/boot_id", "6b1e2b2a-1d7c-4d2e-9a57-1a2b3c4d5e6f\n"},
      {"/sys/class/net/eth0/address", "52:54:00:12:34:56\n"},
      {"/sys/class/net/lo/address", "00:00:00:00:00:00\n"},
      {"/sys/class/net/sit0/address", "00:00:00:00:00:00\n"},
  };
  std::string hostname = "ferry";
  bool is_init = true;
};

class GuestActionsTest : public ::testing::Test {
 protected:
  json Handle(std::string_view line, bool* power_off = nullptr) {
    ActionReply reply = actions_.HandleLine(line);
    if (power_off != nullptr) *power_off = reply.power_off_after;
    EXPECT_EQ(reply.line.find('\n'), std::string::npos);
    return json::parse(reply.line);  // every reply must be valid JSON
  }

  FakeGuestSystem system_;
  Readiness readiness_{{{"redis", 6379}}, [this](const ServiceSpec&) { return redis_up_; }};
  bool redis_up_ = false;
  GuestActions actions_{system_, readiness_};
};

TEST_F(GuestActionsTest, PingReportsReadiness) {
  json reply = Handle(R"({"id": 7, "op": "ping"})");
  EXPECT_EQ(reply["id"], 7);
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["proto"], kProtoVersion);
  EXPECT_EQ(reply["ready"], false);
  EXPECT_EQ(reply["uptime_ms"], 12345);
  redis_up_ = true;
  readiness_.Poll();
  EXPECT_EQ(Handle(R"({"id": 8, "op": "ping"})")["ready"], true);
}

TEST_F(GuestActionsTest, IdentityReadsTheGuest) {
  json reply = Handle(R"({"id": 1, "op": "identity", "extra": [1, 2]})");
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["hostname"], "ferry");
  EXPECT_EQ(reply["machine_id"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(reply["boot_id"], "6b1e2b2a-1d7c-4d2e-9a57-1a2b3c4d5e6f");
  EXPECT_EQ(reply["kernel"], "6.1.0-56-amd64");
  EXPECT_EQ(reply["macs"], json::parse(R"([{"iface": "eth0", "mac": "52:54:00:12:34:56"}])"));
}

TEST_F(GuestActionsTest, IdentityWithMissingFilesStillAnswers) {
  system_.files.clear();
  system_.hostname = "bad\xff\xfe";  // not UTF-8: must not break the reply
  json reply = Handle(R"({"id": 1, "op": "identity"})");
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["machine_id"], "");
  EXPECT_EQ(reply["macs"], json::array());
}

TEST_F(GuestActionsTest, ShutdownAsksForPowerOffOnlyAsInit) {
  bool power_off = false;
  json reply = Handle(R"({"id": 3, "op": "shutdown"})", &power_off);
  EXPECT_EQ(reply, json::parse(R"({"id": 3, "ok": true})"));
  EXPECT_TRUE(power_off);

  system_.is_init = false;
  reply = Handle(R"({"id": 4, "op": "shutdown"})", &power_off);
  EXPECT_EQ(reply["ok"], false);
  EXPECT_NE(reply["error"].get<std::string>().find("PID 1"), std::string::npos);
  EXPECT_FALSE(power_off);
}

TEST_F(GuestActionsTest, UnknownOpIsNamed) {
  json reply = Handle(R"({"id": 5, "op": "exec", "cmd": "rm -rf /"})");
  EXPECT_EQ(reply["id"], 5);
  EXPECT_EQ(reply["ok"], false);
  EXPECT_NE(reply["error"].get<std::string>().find("unknown op 'exec'"), std::string::npos);
}

TEST_F(GuestActionsTest, BadRequestsGetErrorsWithNullId) {
  for (std::string_view bad :
       {"{not json", "[1,2]", "42", R"({"op": "ping"})", R"({"id": -1, "op": "ping"})",
        R"({"id": 1.5, "op": "ping"})", R"({"id": "1", "op": "ping"})", "\"\xff\xfe\""}) {
    json reply = Handle(bad);
    EXPECT_TRUE(reply["id"].is_null()) << bad;
    EXPECT_EQ(reply["ok"], false) << bad;
    EXPECT_FALSE(reply["error"].get<std::string>().empty()) << bad;
  }
}

TEST_F(GuestActionsTest, MissingOpKeepsTheId) {
  json reply = Handle(R"({"id": 9, "op": 3})");
  EXPECT_EQ(reply["id"], 9);
  EXPECT_EQ(reply["ok"], false);
}

TEST_F(GuestActionsTest, HugeUnknownOpIsShortenedInTheError) {
  std::string op(10000, 'x');
  json reply = Handle(R"({"id": 1, "op": ")" + op + "\"}");
  EXPECT_LT(reply["error"].get<std::string>().size(), 400u);
}

TEST_F(GuestActionsTest, OverlongReplyIsAnError) {
  json reply = json::parse(GuestActions::OverlongLineReply());
  EXPECT_TRUE(reply["id"].is_null());
  EXPECT_EQ(reply["ok"], false);
}

TEST_F(GuestActionsTest, ReadyEventHasNoId) {
  json event = json::parse(actions_.ReadyEvent());
  EXPECT_EQ(event["event"], "ready");
  EXPECT_EQ(event["proto"], kProtoVersion);
  EXPECT_EQ(event["services"], json::parse(R"(["redis"])"));
  EXPECT_EQ(event["boot_ms"], 12345);
  EXPECT_FALSE(event.contains("id"));
}

TEST(ParseUptimeTest, ParsesFirstField) {
  EXPECT_EQ(ParseUptimeMs("3.50 1.00\n"), 3500);
  EXPECT_EQ(ParseUptimeMs("garbage"), std::nullopt);
  EXPECT_EQ(ParseUptimeMs("inf 1"), std::nullopt);
  EXPECT_EQ(ParseUptimeMs(""), std::nullopt);
}

}  // namespace
}  // namespace ferry::guest

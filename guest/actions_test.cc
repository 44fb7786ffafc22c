#include "guest/actions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "guest/fake_guest_system.h"
#include "guest/protocol.h"

namespace ferry::guest {
namespace {

using nlohmann::json;

class GuestActionsTest : public ::testing::Test {
 protected:
  json Handle(std::string_view line, bool* power_off = nullptr) {
    ActionReply reply = actions_.HandleLine(line);
    if (power_off != nullptr) *power_off = reply.power_off_after;
    EXPECT_EQ(reply.line.find('\n'), std::string::npos);
    return json::parse(reply.line);  // every reply must be valid JSON
  }

  // Sends `valid` with one member changed to each bad value, then without each required member
  // in turn: every such request must be refused with an error that names the member.
  void ExpectEachRefused(const json& valid,
                         const std::vector<std::pair<std::string, json>>& bad_values,
                         std::initializer_list<const char*> required) {
    for (const auto& [member, value] : bad_values) {
      json request = valid;
      request[member] = value;
      json reply = Handle(request.dump());
      EXPECT_EQ(reply["ok"], false) << member << "=" << value;
      EXPECT_EQ(reply["id"], valid["id"]);
      EXPECT_NE(reply["error"].get<std::string>().find(member), std::string::npos)
          << reply["error"];
    }
    for (const char* member : required) {
      json request = valid;
      request.erase(member);
      json reply = Handle(request.dump());
      EXPECT_EQ(reply["ok"], false) << member;
      EXPECT_NE(reply["error"].get<std::string>().find(member), std::string::npos);
    }
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
  EXPECT_EQ(reply["macs"],
            json::parse(R"([{"iface": "eth0", "mac": "52:54:00:12:34:56", "ipv4": ["10.0.2.15/24"],
                       "ipv6_link_local": ["fe80::5054:ff:fe12:3456"]}])"));
  EXPECT_EQ(reply["ssh_host_keys"],
            (json::array(
                {{{"type", "ssh-ed25519"}, {"fingerprint", FakeGuestSystem::kKeyFingerprint}}})));
  EXPECT_EQ(reply["clock_unix_ns"], 1'700'000'000'000'000'000);
}

TEST_F(GuestActionsTest, IdentityReadsEachHostKeyOnce) {
  Handle(R"({"id": 1, "op": "identity"})");
  Handle(R"({"id": 2, "op": "identity"})");
  EXPECT_EQ(system_.programs.size(), 1u);  // the second reply came from the cache
  system_.files["/etc/dropbear/dropbear_ed25519_host_key"] = "another key";
  Handle(R"({"id": 3, "op": "identity"})");
  EXPECT_EQ(system_.programs.size(), 2u);  // a changed file is read again
}

TEST_F(GuestActionsTest, IdentityLeavesOutKeysDropbearCannotRead) {
  system_.run_program = [](const std::vector<std::string>&) {
    ProgramRun run;
    run.exit_code = 1;
    run.output = "Couldn't read key";
    return run;
  };
  json reply = Handle(R"({"id": 1, "op": "identity"})");
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["ssh_host_keys"], json::array());
}

TEST_F(GuestActionsTest, IdentityWithMissingFilesStillAnswers) {
  system_.files.clear();
  system_.hostname = "bad\xff\xfe";  // not UTF-8: must not break the reply
  json reply = Handle(R"({"id": 1, "op": "identity"})");
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["machine_id"], "");
  EXPECT_EQ(reply["macs"], json::array());
  EXPECT_EQ(reply["ssh_host_keys"], json::array());
}

// The first round goes out before the reply; the repeat is left to run after it.
TEST_F(GuestActionsTest, AnnounceSendsGratuitousArpForTheNicsAddresses) {
  system_.ipv4["eth0"] = {"10.77.0.22/24"};
  const std::string sent = "AnnounceIpv4 eth0 52:54:00:12:34:56 10.77.0.22";
  ActionReply announced = actions_.HandleLine(R"({"id": 5, "op": "announce"})");
  EXPECT_EQ(json::parse(announced.line),
            json::parse(R"({"id": 5, "ok": true, "announced": ["10.77.0.22"], "rounds": 2,
                            "rounds_before_reply": 1})"));
  EXPECT_EQ(std::count(system_.log.begin(), system_.log.end(), sent), 1);
  ASSERT_TRUE(announced.after_reply);
  EXPECT_EQ(announced.after_reply(), "");
  EXPECT_EQ(std::count(system_.log.begin(), system_.log.end(), sent), 2);
  system_.fail["AnnounceIpv4"] = "sendto: No buffer";
  EXPECT_EQ(announced.after_reply(), "announce, repeated: sendto: No buffer");
  system_.fail.clear();
  json reply;
  reply = Handle(R"({"id": 6, "op": "announce", "ipv4": "10.0.0.1"})");
  EXPECT_EQ(reply["ok"], false);
  EXPECT_NE(reply["error"].get<std::string>().find("takes no arguments"), std::string::npos);
  system_.ipv4["eth0"] = {};
  reply = Handle(R"({"id": 7, "op": "announce"})");
  EXPECT_EQ(reply["ok"], false);
  EXPECT_NE(reply["error"].get<std::string>().find("no IPv4 address"), std::string::npos);
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

// A valid reset_identity request; tests change one member at a time.
json ResetRequest() {
  return json{{"id", 11},
              {"op", "reset_identity"},
              {"hostname", "web-2"},
              {"mac", "52:54:00:ab:cd:ef"},
              {"machine_id", "00112233445566778899aabbccddeeff"},
              {"entropy", std::string(64, 'a') + std::string(64, 'b')},  // hex, 64 bytes
              {"time_unix_ns", 1'750'000'000'123'456'789}};
}

// What a successful reset_identity or finish_identity reply should report.
struct ExpectedIdentity {
  std::string hostname;
  std::string machine_id;
  json macs;
  std::int64_t clock_unix_ns;
  std::vector<const char*> steps;  // the steps timed in steps_ms, and no others
};

void ExpectIdentityReply(const json& reply, const ExpectedIdentity& expected) {
  const json& identity = reply["identity"];
  EXPECT_EQ(identity["hostname"], expected.hostname);
  EXPECT_EQ(identity["machine_id"], expected.machine_id);
  EXPECT_EQ(identity["macs"], expected.macs);
  EXPECT_EQ(identity["clock_unix_ns"], expected.clock_unix_ns);
  EXPECT_EQ(identity["ssh_host_keys"][0]["fingerprint"], FakeGuestSystem::kKeyFingerprint);
  EXPECT_EQ(reply["steps_ms"].size(), expected.steps.size());
  for (const char* step : expected.steps) {
    EXPECT_TRUE(reply["steps_ms"][step].is_number()) << step;
  }
  EXPECT_TRUE(reply["total_ms"].is_number());
}

TEST_F(GuestActionsTest, ResetIdentityChangesEverythingAndReportsIt) {
  json reply = Handle(ResetRequest().dump());
  ASSERT_EQ(reply["ok"], true) << reply.dump();
  EXPECT_EQ(reply["id"], 11);
  ExpectIdentityReply(
      reply, {.hostname = "web-2",
              .machine_id = "00112233445566778899aabbccddeeff",
              .macs = json::parse(R"([{"iface": "eth0", "mac": "52:54:00:ab:cd:ef",
                                       "ipv4": ["10.0.2.15/24", "10.0.2.16/24"],
                                       "ipv6_link_local": ["fe80::5054:ff:fe12:3456"]}])"),
              .clock_unix_ns = 1'750'000'000'123'456'789,
              .steps = {"rng", "clock", "machine_id", "hostname", "mac", "ssh_keys", "dhcp"}});
  // The key made by the reset is known without running dropbearkey -y again.
  EXPECT_EQ(system_.programs.size(), 1u);  // dropbearkey -t; DHCP runs no program
}

TEST_F(GuestActionsTest, ResetIdentityWithABadArgumentChangesNothing) {
  std::vector<std::pair<std::string, json>> bad = {
      {"hostname", "-web"},
      {"hostname", std::string(64, 'a')},
      {"hostname", "web.example.com"},
      {"hostname", ""},
      {"hostname", 42},
      {"mac", "01:00:5e:00:00:01"},  // multicast
      {"mac", "00:00:00:00:00:00"},
      {"mac", "52-54-00-ab-cd-ef"},
      {"mac", "52:54:00:ab:cd"},
      {"machine_id", "00112233445566778899AABBCCDDEEFF"},  // must be lowercase
      {"machine_id", std::string(32, '0')},
      {"machine_id", "0011"},
      {"entropy", std::string(62, 'a')},    // 31 bytes
      {"entropy", std::string(1026, 'a')},  // 513 bytes
      {"entropy", std::string(128, 'a')},   // one byte value, not random
      {"entropy", "not base64 or hex!"},
      {"time_unix_ns", 1'750'000'000},  // seconds, not ns
      {"time_unix_ns", 5'000'000'000'000'000'000u},
      {"time_unix_ns", -1},
      {"time_unix_ns", 1.75e18},
      {"time_unix_ns", "1750000000000000000"},
      {"hostnme", "typo"},
  };
  ExpectEachRefused(ResetRequest(), bad,
                    {"hostname", "mac", "machine_id", "entropy", "time_unix_ns"});
  EXPECT_EQ(system_.log, std::vector<std::string>{});
  EXPECT_EQ(system_.hostname, "ferry");
}

TEST_F(GuestActionsTest, ResetIdentityNeverEchoesTheEntropy) {
  json request = ResetRequest();
  request["entropy"] = "c2VjcmV0IGJ1dCB0b28gc2hvcnQ=";  // base64 of 20 bytes
  json reply = Handle(request.dump());
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["error"].get<std::string>().find("c2VjcmV0"), std::string::npos);
}

TEST_F(GuestActionsTest, ResetIdentityFailureNamesTheStepAndWhatStaysDone) {
  system_.fail["SetMacAddress"] = "SIOCSIFHWADDR on eth0: Device or resource busy";
  json reply = Handle(ResetRequest().dump());
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["failed_step"], "mac");
  std::string error = reply["error"];
  EXPECT_NE(error.find("step 'mac'"), std::string::npos) << error;
  EXPECT_NE(error.find("Device or resource busy"), std::string::npos) << error;
  EXPECT_NE(error.find("rng, clock, machine_id, hostname"), std::string::npos) << error;
  EXPECT_NE(error.find("not attempted: ssh_keys, dhcp"), std::string::npos) << error;
  EXPECT_EQ(reply["steps_ms"].size(), 4u);
  EXPECT_EQ(system_.programs.size(), 0u);  // no key made, no DHCP after the failure
  EXPECT_EQ(system_.hostname, "web-2");    // the earlier steps stay done
}

TEST_F(GuestActionsTest, ResetIdentityRefusedOutsideAGuest) {
  system_.is_init = false;
  json reply = Handle(ResetRequest().dump());
  EXPECT_EQ(reply["ok"], false);
  EXPECT_NE(reply["error"].get<std::string>().find("PID 1"), std::string::npos);
  EXPECT_EQ(system_.log, std::vector<std::string>{});
}

// A valid finish_identity request; tests change one member at a time.
json FinishRequest() {
  return json{{"id", 12},
              {"op", "finish_identity"},
              {"hostname", "web-3"},
              {"entropy", std::string(64, 'c') + std::string(64, 'd')},  // hex, 64 bytes
              {"time_unix_ns", 1'760'000'000'123'456'789}};
}

TEST_F(GuestActionsTest, FinishIdentityRunsRngClockHostnameOnlyAndReports) {
  json reply = Handle(FinishRequest().dump());
  ASSERT_EQ(reply["ok"], true) << reply.dump();
  EXPECT_EQ(reply["id"], 12);
  // What the pool set stays: the MAC, address, machine-id and key are not touched.
  ExpectIdentityReply(reply, {.hostname = "web-3",
                              .machine_id = "0123456789abcdef0123456789abcdef",
                              .macs = json::parse(R"([{"iface": "eth0", "mac": "52:54:00:12:34:56",
                                       "ipv4": ["10.0.2.15/24"],
                                       "ipv6_link_local": ["fe80::5054:ff:fe12:3456"]}])"),
                              .clock_unix_ns = 1'760'000'000'123'456'789,
                              .steps = {"rng", "clock", "hostname"}});
  // The steps in order, then only the read of the existing key for the identity reply.
  EXPECT_EQ(system_.log, (std::vector<std::string>{
                             "AddEntropyAndReseed 64",
                             "SetRealtimeNs 1760000000123456789",
                             "SetHostname web-3",
                             "WriteFileAtomically /etc/hostname 420",
                             "WriteFileAtomically /etc/hosts 420",
                             "RunProgram /usr/bin/dropbearkey -y -f "
                             "/etc/dropbear/dropbear_ed25519_host_key",
                         }));
  EXPECT_TRUE(system_.dhcp_queries.empty());
}

TEST_F(GuestActionsTest, FinishIdentityRefusesBadArgumentsWithoutChangingAnything) {
  const std::vector<std::pair<std::string, json>> bad = {
      {"hostname", "web.3"},
      {"entropy", std::string(60, 'c') + "d1"},  // 31 bytes
      {"time_unix_ns", 1'760'000'000},           // seconds, not ns
      {"mac", "52:54:00:ab:cd:ef"},              // finish_identity never changes the MAC
      {"ssh_host_key", std::string(128, 'a')},
  };
  ExpectEachRefused(FinishRequest(), bad, {"hostname", "entropy", "time_unix_ns"});
  EXPECT_EQ(system_.log, std::vector<std::string>{});
  EXPECT_EQ(system_.hostname, "ferry");
}

TEST_F(GuestActionsTest, FinishIdentityRefusedOutsideAGuest) {
  system_.is_init = false;
  json reply = Handle(FinishRequest().dump());
  EXPECT_EQ(reply["ok"], false);
  const std::string error = reply["error"];
  EXPECT_EQ(error.rfind("finish_identity refused", 0), 0u) << error;
  EXPECT_NE(error.find("PID 1"), std::string::npos) << error;
  EXPECT_EQ(system_.log, std::vector<std::string>{});
}

TEST_F(GuestActionsTest, FinishIdentityFailureNamesTheStepAndWhatStaysDone) {
  system_.fail["SetRealtimeNs"] = "clock_settime: Invalid argument";
  json reply = Handle(FinishRequest().dump());
  EXPECT_EQ(reply["ok"], false);
  EXPECT_EQ(reply["id"], 12);
  EXPECT_EQ(reply["failed_step"], "clock");
  std::string error = reply["error"];
  EXPECT_EQ(
      error.rfind("finish_identity failed at step 'clock': clock_settime: Invalid argument", 0), 0u)
      << error;
  EXPECT_NE(error.find("Done, and still in effect: rng; not attempted: hostname"),
            std::string::npos)
      << error;
  EXPECT_EQ(reply["steps_ms"].size(), 1u);
  EXPECT_TRUE(reply["steps_ms"]["rng"].is_number());
  EXPECT_FALSE(reply.contains("identity"));
  EXPECT_EQ(system_.hostname, "ferry");  // not attempted
}

TEST_F(GuestActionsTest, UrandomReturnsHex) {
  json reply = Handle(R"({"id": 2, "op": "urandom", "bytes": 3})");
  EXPECT_EQ(reply, json::parse(R"({"id": 2, "ok": true, "hex": "5a5a5a"})"));
  for (const char* bad :
       {R"({"id": 3, "op": "urandom"})", R"({"id": 3, "op": "urandom", "bytes": 0})",
        R"({"id": 3, "op": "urandom", "bytes": 65})", R"({"id": 3, "op": "urandom", "bytes": -1})",
        R"({"id": 3, "op": "urandom", "bytes": "8"})"}) {
    json error = Handle(bad);
    EXPECT_EQ(error["ok"], false) << bad;
    EXPECT_NE(error["error"].get<std::string>().find("1 to 64"), std::string::npos);
  }
  system_.fail["ReadUrandom"] = "";
  EXPECT_EQ(Handle(R"({"id": 4, "op": "urandom", "bytes": 8})")["ok"], false);
}

TEST_F(GuestActionsTest, BallastHoldsWhatIsAskedWithinWhatTheGuestCanSpare) {
  system_.files["/proc/meminfo"] = "MemTotal: 262144 kB\nMemAvailable: 204800 kB\n";  // 200 MiB
  json reply = Handle(R"({"id": 6, "op": "ballast", "mib": 2})");
  EXPECT_EQ(reply["ok"], true) << reply;
  EXPECT_EQ(reply["mib"], 2);
  EXPECT_TRUE(reply["fill_ms"].is_number());
  // 200 MiB available less the 64 MiB reserve: 136 may be added, 137 may not.
  json refused = Handle(R"({"id": 7, "op": "ballast", "mib": 139})");
  EXPECT_EQ(refused["ok"], false);
  EXPECT_NE(refused["error"].get<std::string>().find("can spare only 136 MiB"), std::string::npos)
      << refused;
  EXPECT_EQ(Handle(R"({"id": 8, "op": "ballast", "mib": 0})")["mib"], 0);
  for (const char* bad : {R"({"id": 9, "op": "ballast"})", R"({"id": 9, "op": "ballast", "mib": -1})",
                          R"({"id": 9, "op": "ballast", "mib": "2"})",
                          R"({"id": 9, "op": "ballast", "mib": 99999999999})"}) {
    EXPECT_EQ(Handle(bad)["ok"], false) << bad;
  }
}

TEST_F(GuestActionsTest, UnknownOpIsNamed) {
  json reply = Handle(R"({"id": 5, "op": "exec", "cmd": "rm -rf /"})");
  EXPECT_EQ(reply["id"], 5);
  EXPECT_EQ(reply["ok"], false);
  EXPECT_NE(reply["error"].get<std::string>().find("unknown op 'exec'"), std::string::npos);
  EXPECT_NE(reply["error"].get<std::string>().find("finish_identity"), std::string::npos);
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

// nlohmann's parser reports a number too large for a double (1e400) as out_of_range, not
// parse_error. Uncaught, it would end ferry-guest, the guest's PID 1, and with it the guest.
// Found by fuzz/guest_request.
TEST_F(GuestActionsTest, NumberOverflowIsAnErrorNotACrash) {
  for (std::string_view bad : {R"({"id": 1, "op": "ping", "x": 1e400})", "-1e999", "[1E+9999]"}) {
    json reply = Handle(bad);
    EXPECT_TRUE(reply["id"].is_null()) << bad;
    EXPECT_EQ(reply["ok"], false) << bad;
    EXPECT_NE(reply["error"].get<std::string>().find("not valid JSON"), std::string::npos)
        << reply["error"];
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

#include "qemu/guest_messages.h"

#include <gtest/gtest.h>

namespace ferry::qemu {
namespace {

using nlohmann::json;

const json kIdentity = {{"hostname", "web-1"},
                        {"machine_id", "0123456789abcdef0123456789abcdef"},
                        {"boot_id", "b"},
                        {"macs",
                         {{{"iface", "eth0"},
                           {"mac", "52:54:00:12:34:56"},
                           {"ipv4", {"10.0.2.15/24"}},
                           {"ipv6_link_local", {"fe80::5054:ff:fe12:3456"}}}}},
                        {"kernel", "6.1.0"},
                        {"ssh_host_keys", {{{"type", "ssh-ed25519"}, {"fingerprint", "SHA256:x"}}}},
                        {"clock_unix_ns", 1700000000000000000}};

TEST(GuestMessagesTest, PingParsesAndRefusesWrongTypes) {
  auto ping = ParsePingReply({{"proto", 3}, {"ready", true}, {"uptime_ms", 12}});
  ASSERT_TRUE(ping.ok()) << ping.status().message();
  EXPECT_EQ(ping->proto, 3);
  EXPECT_TRUE(ping->ready);
  EXPECT_EQ(ping->uptime_ms, 12);

  // The reply that used to end ferryd (nlohmann's value("ready", false) throws on it).
  auto bad = ParsePingReply({{"proto", 3}, {"ready", "x"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(bad.status().message(),
            "guest ping reply: member \"ready\" must be a boolean, not string");
  EXPECT_FALSE(ParsePingReply({{"ready", true}}).ok());                 // no proto
  EXPECT_FALSE(ParsePingReply({{"proto", -1}, {"ready", true}}).ok());  // out of range
  EXPECT_FALSE(ParsePingReply({{"proto", 1.5}, {"ready", true}}).ok());
  EXPECT_FALSE(ParsePingReply(json::array()).ok());
}

TEST(GuestMessagesTest, IdentityRoundTripsAndNamesTheBadMember) {
  auto id = ParseIdentityReply(kIdentity);
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(id->hostname, "web-1");
  ASSERT_EQ(id->macs.size(), 1u);
  EXPECT_EQ(id->macs[0].ipv4, std::vector<std::string>{"10.0.2.15/24"});
  EXPECT_EQ(id->macs[0].ipv6_link_local, std::vector<std::string>{"fe80::5054:ff:fe12:3456"});
  EXPECT_EQ(id->ToJson(), kIdentity);

  json bad = kIdentity;
  bad["macs"][0]["mac"] = {{"x", 1}};
  auto r = ParseIdentityReply(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("in \"macs\"[0]: member \"mac\" must be a string"),
            std::string::npos)
      << r.status().message();
  bad = kIdentity;
  bad["macs"][0]["ipv6_link_local"] = {1};
  EXPECT_FALSE(ParseIdentityReply(bad).ok());
  bad = kIdentity;
  bad["hostname"] = 7;
  EXPECT_FALSE(ParseIdentityReply(bad).ok());
  bad = kIdentity;
  bad["ssh_host_keys"] = "none";
  EXPECT_FALSE(ParseIdentityReply(bad).ok());
  bad = kIdentity;
  bad.erase("hostname");
  EXPECT_FALSE(ParseIdentityReply(bad).ok());
}

TEST(GuestMessagesTest, IdentityChangeChecksStepsAndIdentity) {
  json reply = {
      {"identity", kIdentity}, {"steps_ms", {{"rng", 0.5}, {"dhcp", 3}}}, {"total_ms", 4.2}};
  auto change = ParseIdentityChangeReply("reset_identity", reply);
  ASSERT_TRUE(change.ok()) << change.status().message();
  EXPECT_EQ(change->steps_ms.at("dhcp"), 3.0);
  EXPECT_EQ(change->total_ms, 4.2);
  EXPECT_EQ(change->StepsJson(), (json{{"rng", 0.5}, {"dhcp", 3.0}}));

  json bad = reply;
  bad["steps_ms"]["rng"] = "slow";
  auto r = ParseIdentityChangeReply("finish_identity", bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("guest finish_identity reply, in \"steps_ms\": member "
                                      "\"rng\" must be a number"),
            std::string::npos)
      << r.status().message();
  bad = reply;
  bad["identity"] = "me";
  EXPECT_FALSE(ParseIdentityChangeReply("reset_identity", bad).ok());
  bad = reply;
  bad["total_ms"] = json::array();
  EXPECT_FALSE(ParseIdentityChangeReply("reset_identity", bad).ok());
}

TEST(GuestMessagesTest, BallastMustBeWhatWasAsked) {
  EXPECT_EQ(ParseBallastReply({{"mib", 900}, {"fill_ms", 4100}}, 900)->fill_ms, 4100);
  EXPECT_EQ(*ParseAnnounceReply({{"announced", {"10.77.0.21"}}, {"rounds", 2}}),
            std::vector<std::string>{"10.77.0.21"});
  EXPECT_FALSE(ParseAnnounceReply({{"announced", json::array()}}).ok());
  EXPECT_FALSE(ParseAnnounceReply({{"announced", {"10.77.0.21; rm"}}}).ok());
  EXPECT_FALSE(ParseAnnounceReply({{"announced", "10.77.0.21"}}).ok());
  EXPECT_FALSE(ParseAnnounceReply(json::object()).ok());
  EXPECT_FALSE(ParseAnnounceReply({{"announced", std::vector<std::string>(65, "10.0.0.1")}}).ok());
  EXPECT_FALSE(ParseBallastReply({{"mib", 899}, {"fill_ms", 4100}}, 900).ok());
  EXPECT_FALSE(ParseBallastReply({{"mib", "900"}, {"fill_ms", 4100}}, 900).ok());
  EXPECT_FALSE(ParseBallastReply({{"mib", 900}}, 900).ok());
}

TEST(GuestMessagesTest, RandomMustBeHexOfTheAskedLength) {
  EXPECT_TRUE(ParseRandomReply({{"hex", "00ff"}}, 2).ok());
  EXPECT_FALSE(ParseRandomReply({{"hex", "00ff"}}, 3).ok());
  EXPECT_FALSE(ParseRandomReply({{"hex", "00FG"}}, 2).ok());
  EXPECT_FALSE(ParseRandomReply({{"hex", 12}}, 1).ok());
  EXPECT_TRUE(ParseShutdownReply(json::object()).ok());
  EXPECT_FALSE(ParseShutdownReply(json("bye")).ok());
}

TEST(GuestMessagesTest, GuestLinesAreClassified) {
  auto reply = ParseGuestLine(R"({"id": 7, "ok": true, "proto": 3})");
  ASSERT_TRUE(reply.ok()) << reply.status().message();
  EXPECT_EQ(reply->kind, GuestLine::Kind::kReply);
  EXPECT_EQ(reply->id, 7u);
  EXPECT_EQ(reply->body, (json{{"proto", 3}}));

  auto failed = ParseGuestLine("{\"id\": 7, \"ok\": false, \"error\": \"no\\u001b[2J\"}");
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed->ok);
  EXPECT_EQ(failed->error, "no\\x1b[2J");  // escaped at the edge

  auto ready = ParseGuestLine(R"({"event": "ready", "proto": 3, "services": ["redis"]})");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->kind, GuestLine::Kind::kEvent);
  EXPECT_EQ(ready->event, "ready");

  EXPECT_FALSE(ParseGuestLine(R"({"event": "ready", "proto": "3"})").ok());
  EXPECT_FALSE(ParseGuestLine(R"({"event": "ready", "proto": 3, "services": [1]})").ok());
  EXPECT_FALSE(ParseGuestLine(R"({"id": 7, "ok": "yes"})").ok());
  EXPECT_FALSE(ParseGuestLine(R"({"id": -7, "ok": true})").ok());
  EXPECT_FALSE(ParseGuestLine(R"({"id": 7})").ok());
  EXPECT_FALSE(ParseGuestLine(R"({"hello": 1})").ok());
  EXPECT_FALSE(ParseGuestLine("[1]").ok());
  EXPECT_FALSE(ParseGuestLine("{").ok());
}

TEST(GuestMessagesTest, DeepAndOversizeLinesAreRefused) {
  std::string deep = R"({"id": 1, "ok": true, "ready": )" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  auto r = ParsePingReplyLine(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos);
  EXPECT_FALSE(ParseIdentityReplyLine(deep).ok());
  EXPECT_FALSE(ParseIdentityChangeReplyLine(deep).ok());

  auto ping = ParsePingReplyLine(R"({"id": 1, "ok": true, "proto": 3, "ready": false})");
  ASSERT_TRUE(ping.ok()) << ping.status().message();
  EXPECT_FALSE(ping->ready);
  auto refused = ParsePingReplyLine(R"({"id": 1, "ok": false, "error": "busy"})");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition);
}

}  // namespace
}  // namespace ferry::qemu

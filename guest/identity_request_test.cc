#include "guest/identity_request.h"

#include <gtest/gtest.h>

#include "guest/encoding.h"

namespace ferry::guest {
namespace {

using nlohmann::json;

json Request() {
  std::string entropy;
  for (int i = 0; i < 64; ++i) entropy.push_back(static_cast<char>(i * 37 + 1));
  return json{{"id", 1},
              {"op", "reset_identity"},
              {"hostname", "web-2"},
              {"mac", "52:54:00:AB:cd:EF"},
              {"machine_id", "00112233445566778899aabbccddeeff"},
              {"entropy", Base64Encode(entropy)},
              {"time_unix_ns", 1'750'000'000'123'456'789}};
}

TEST(CloneIdentityTest, ParsesAValidRequest) {
  auto parsed = ParseCloneIdentity(Request());
  ASSERT_TRUE(std::holds_alternative<CloneIdentity>(parsed)) << std::get<std::string>(parsed);
  const CloneIdentity& identity = std::get<CloneIdentity>(parsed);
  EXPECT_EQ(identity.hostname, "web-2");
  EXPECT_EQ(identity.mac, (MacAddress{0x52, 0x54, 0x00, 0xab, 0xcd, 0xef}));
  EXPECT_EQ(identity.mac_text, "52:54:00:ab:cd:ef");
  EXPECT_EQ(identity.machine_id, "00112233445566778899aabbccddeeff");
  EXPECT_EQ(identity.entropy.size(), 64u);
  EXPECT_EQ(identity.entropy[1], static_cast<char>(38));
  EXPECT_EQ(identity.time_unix_ns, 1'750'000'000'123'456'789);
}

TEST(CloneIdentityTest, AStaticAddressIsOptionalAndChecked) {
  auto without = ParseCloneIdentity(Request());
  ASSERT_TRUE(std::holds_alternative<CloneIdentity>(without));
  EXPECT_FALSE(std::get<CloneIdentity>(without).ipv4);
  json request = Request();
  request["ipv4"] = "10.77.0.22/24";
  auto with = ParseCloneIdentity(request);
  ASSERT_TRUE(std::holds_alternative<CloneIdentity>(with)) << std::get<std::string>(with);
  const auto& ipv4 = *std::get<CloneIdentity>(with).ipv4;
  EXPECT_EQ(ipv4.address, 0x0a4d0016u);
  EXPECT_EQ(ipv4.prefix_length, 24);
  EXPECT_EQ(ipv4.text, "10.77.0.22/24");
  for (json bad : {json("10.77.0.22"), json("10.77.0.22/33"), json("10.77.0.22/0"),
                   json("10.77.0.22/024"), json("10.77.0.0/24"), json("10.77.0.255/24"),
                   json("127.0.0.1/8"), json("224.0.0.1/24"), json("10.77.0.22/24 "),
                   json("10.77.0.22/2x"), json(""), json(42), json("1.1.1.1/24;reboot")}) {
    request["ipv4"] = bad;
    auto refused = ParseCloneIdentity(request);
    ASSERT_TRUE(std::holds_alternative<std::string>(refused)) << bad.dump();
    EXPECT_NE(std::get<std::string>(refused).find("\"ipv4\""), std::string::npos);
  }
  // /31 and /32 have no network or broadcast address to refuse.
  EXPECT_TRUE(ParseStaticIpv4("10.77.0.0/31"));
  EXPECT_TRUE(ParseStaticIpv4("10.77.0.9/32"));
}

TEST(CloneIdentityTest, HostnameLabels) {
  for (const char* good : {"a", "A-1", "0web", "web-2", "x-y-z"}) {
    EXPECT_TRUE(ValidHostnameLabel(good)) << good;
  }
  EXPECT_TRUE(ValidHostnameLabel(std::string(63, 'a')));
  EXPECT_FALSE(ValidHostnameLabel(std::string(64, 'a')));
  for (const char* bad : {"", "-a", "a-", "a_b", "a.b", "a b", "caf\xc3\xa9", "a\n"}) {
    EXPECT_FALSE(ValidHostnameLabel(bad)) << bad;
  }
}

TEST(CloneIdentityTest, MacAddresses) {
  EXPECT_TRUE(ParseUnicastMac("02:00:00:00:00:01"));
  EXPECT_TRUE(ParseUnicastMac("52:54:00:12:34:56"));
  for (const char* bad : {"01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
                          "52:54:00:12:34", "52:54:00:12:34:567", "52:54:00:12:34:5g",
                          "52-54-00-12-34-56", "5254.0012.3456", " 52:54:00:12:34:5"}) {
    EXPECT_FALSE(ParseUnicastMac(bad)) << bad;
  }
  EXPECT_EQ(FormatMac({0x52, 0x54, 0x00, 0x0a, 0xbc, 0xff}), "52:54:00:0a:bc:ff");
}

TEST(CloneIdentityTest, MachineIds) {
  EXPECT_TRUE(ValidMachineId("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(ValidMachineId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(ValidMachineId(std::string(32, '0')));
  EXPECT_FALSE(ValidMachineId("0123456789abcdef0123456789abcde"));
  EXPECT_FALSE(ValidMachineId("6b1e2b2a-1d7c-4d2e-9a57-1a2b3c4d"));
}

TEST(CloneIdentityTest, EntropyIsHexOrBase64) {
  EXPECT_EQ(DecodeEntropy("00ff"), std::string("\x00\xff", 2));
  EXPECT_EQ(DecodeEntropy("AP8="), std::string("\x00\xff", 2));
  EXPECT_EQ(DecodeEntropy("AP8"), std::nullopt);
  EXPECT_EQ(DecodeEntropy(""), "");  // refused by the length check
}

TEST(CloneIdentityTest, EntropyLengthBounds) {
  auto with_bytes = [](std::size_t n) {
    std::string bytes;
    for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<char>(i));
    json request = Request();
    request["entropy"] = HexEncode(bytes);
    return ParseCloneIdentity(request);
  };
  EXPECT_TRUE(std::holds_alternative<CloneIdentity>(with_bytes(kMinEntropyBytes)));
  EXPECT_TRUE(std::holds_alternative<CloneIdentity>(with_bytes(kMaxEntropyBytes)));
  EXPECT_FALSE(std::holds_alternative<CloneIdentity>(with_bytes(kMinEntropyBytes - 1)));
  EXPECT_FALSE(std::holds_alternative<CloneIdentity>(with_bytes(kMaxEntropyBytes + 1)));
}

TEST(CloneIdentityTest, TimeBounds) {
  json request = Request();
  request["time_unix_ns"] = kMinTimeUnixNs;
  EXPECT_TRUE(std::holds_alternative<CloneIdentity>(ParseCloneIdentity(request)));
  request["time_unix_ns"] = kMinTimeUnixNs - 1;
  EXPECT_FALSE(std::holds_alternative<CloneIdentity>(ParseCloneIdentity(request)));
  request["time_unix_ns"] = kMaxTimeUnixNs - 1;
  EXPECT_TRUE(std::holds_alternative<CloneIdentity>(ParseCloneIdentity(request)));
  request["time_unix_ns"] = kMaxTimeUnixNs;
  EXPECT_FALSE(std::holds_alternative<CloneIdentity>(ParseCloneIdentity(request)));
  request["time_unix_ns"] = std::numeric_limits<uint64_t>::max();
  EXPECT_FALSE(std::holds_alternative<CloneIdentity>(ParseCloneIdentity(request)));
  request["time_unix_ns"] = std::numeric_limits<int64_t>::min();
  EXPECT_FALSE(std::holds_alternative<CloneIdentity>(ParseCloneIdentity(request)));
}

TEST(CloneIdentityTest, SshHostKeyIsOptionalAndExactly64Bytes) {
  auto parsed = ParseCloneIdentity(Request());
  ASSERT_TRUE(std::holds_alternative<CloneIdentity>(parsed));
  EXPECT_FALSE(std::get<CloneIdentity>(parsed).ssh_host_key);

  std::string key;
  for (int i = 0; i < 64; ++i) key.push_back(static_cast<char>(i * 7 + 3));
  json request = Request();
  request["ssh_host_key"] = HexEncode(key);
  parsed = ParseCloneIdentity(request);
  ASSERT_TRUE(std::holds_alternative<CloneIdentity>(parsed)) << std::get<std::string>(parsed);
  EXPECT_EQ(std::get<CloneIdentity>(parsed).ssh_host_key, key);

  for (const json& bad : {json(HexEncode(key.substr(1))), json(HexEncode(key + "x")),
                          json(Base64Encode(key)), json(std::string(128, '0')), json(64)}) {
    request["ssh_host_key"] = bad;
    parsed = ParseCloneIdentity(request);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << bad.dump();
    EXPECT_NE(std::get<std::string>(parsed).find("ssh_host_key"), std::string::npos);
  }
}

// A valid finish_identity request; tests change one member at a time.
json FinishRequest() {
  std::string entropy;
  for (int i = 0; i < 64; ++i) entropy.push_back(static_cast<char>(i * 53 + 7));
  return json{{"id", 2},
              {"op", "finish_identity"},
              {"hostname", "web-3"},
              {"entropy", HexEncode(entropy)},
              {"time_unix_ns", 1'750'000'000'987'654'321}};
}

TEST(CloneIdentityFinishTest, ParsesAValidRequest) {
  auto parsed = ParseCloneIdentityFinish(FinishRequest());
  ASSERT_TRUE(std::holds_alternative<CloneIdentityFinish>(parsed)) << std::get<std::string>(parsed);
  const CloneIdentityFinish& finish = std::get<CloneIdentityFinish>(parsed);
  EXPECT_EQ(finish.hostname, "web-3");
  EXPECT_EQ(finish.entropy.size(), 64u);
  EXPECT_EQ(finish.entropy[1], static_cast<char>(60));
  EXPECT_EQ(finish.time_unix_ns, 1'750'000'000'987'654'321);
  EXPECT_FALSE(finish.ipv4);
  json tap = FinishRequest();
  tap["ipv4"] = "10.77.0.30/24";
  auto with_ipv4 = ParseCloneIdentityFinish(tap);
  ASSERT_TRUE(std::holds_alternative<CloneIdentityFinish>(with_ipv4));
  EXPECT_EQ(std::get<CloneIdentityFinish>(with_ipv4).ipv4->text, "10.77.0.30/24");
}

TEST(CloneIdentityFinishTest, RefusesEachBadMissingOrUnknownMember) {
  struct Case {
    const char* what;
    json request;
    const char* named;  // what the message must name
  };
  std::vector<Case> cases;
  for (const char* member : {"hostname", "entropy", "time_unix_ns"}) {
    json request = FinishRequest();
    request.erase(member);
    cases.push_back({"missing", request, member});
  }
  auto with = [](const char* member, json value) {
    json request = FinishRequest();
    request[member] = std::move(value);
    return request;
  };
  cases.push_back({"bad hostname", with("hostname", "web_3"), "hostname"});
  cases.push_back({"hostname not a string", with("hostname", 3), "hostname"});
  cases.push_back({"short entropy", with("entropy", std::string(60, 'a') + "b1"), "entropy"});
  cases.push_back({"time in seconds", with("time_unix_ns", 1'750'000'000), "time_unix_ns"});
  cases.push_back({"time as text", with("time_unix_ns", "1750000000000000000"), "time_unix_ns"});
  // finish_identity never changes the MAC (or anything else reset_identity sets).
  cases.push_back({"unknown mac", with("mac", "52:54:00:ab:cd:ef"), "\"mac\""});
  cases.push_back({"unknown machine_id", with("machine_id", std::string(32, '1')), "machine_id"});
  cases.push_back({"bad ipv4", with("ipv4", "10.77.0.255/24"), "\"ipv4\""});
  for (const Case& c : cases) {
    auto parsed = ParseCloneIdentityFinish(c.request);
    ASSERT_TRUE(std::holds_alternative<std::string>(parsed)) << c.what;
    const std::string& error = std::get<std::string>(parsed);
    EXPECT_EQ(error.rfind("finish_identity", 0), 0u) << c.what << ": " << error;
    EXPECT_NE(error.find(c.named), std::string::npos) << c.what << ": " << error;
  }
}

TEST(CloneIdentityFinishTest, NeverEchoesTheEntropy) {
  json request = FinishRequest();
  request["entropy"] = "c2VjcmV0IGJ1dCB0b28gc2hvcnQ=";  // base64 of 20 bytes
  auto parsed = ParseCloneIdentityFinish(request);
  ASSERT_TRUE(std::holds_alternative<std::string>(parsed));
  EXPECT_EQ(std::get<std::string>(parsed).find("c2VjcmV0"), std::string::npos);
}

}  // namespace
}  // namespace ferry::guest

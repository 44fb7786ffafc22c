#include "migrate/migration_messages.h"

#include <gtest/gtest.h>

namespace ferry::migrate {
namespace {

using nlohmann::json;

json Prepare() {
  return {{"type", "prepare"},
          {"migration", "0123456789abcdef"},
          {"spec", {{"name", "web-1"}, {"memory_mib", 256}}},
          {"mac", "52:54:00:00:00:01"},
          {"vmgenid", "6f1a7c1e-1111-2222-3333-444455556666"}};
}

std::string Refusal(const json& message) {
  auto parsed = ParsePeerMessage(message.dump());
  EXPECT_FALSE(parsed.ok()) << message.dump();
  return parsed.ok() ? "" : parsed.status().message();
}

TEST(MigrationMessages, EveryTypeRoundTrips) {
  auto prepare = ParsePeerMessage(Prepare().dump());
  ASSERT_TRUE(prepare.ok()) << prepare.status().message();
  const auto& p = std::get<PrepareRequest>(*prepare);
  EXPECT_EQ(p.spec.name, "web-1");
  EXPECT_EQ(p.mac.ToString(), "52:54:00:00:00:01");
  ASSERT_TRUE(p.vmgenid);
  auto again = ParsePeerMessage(MessageJson(*prepare).dump());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(MessageJson(*again), MessageJson(*prepare));
  for (const PeerMessage& m : std::vector<PeerMessage>{
           PreparedReply{}, ReceivedReply{}, FinishRequest{}, FinishedReply{},
           FailedReply{"no room"}, AbortRequest{"cancelled"}, QueryRequest{"abc-1", "web-1"},
           StateReply{SettledState::kAbsent}, PreparedReply{std::string(32, '\x7f')},
           DiskLinkRequest{"abc-1", std::string(32, 'k')}, DiskLinkedReply{}, DiskReadyRequest{}}) {
    auto back = ParsePeerMessage(MessageJson(m).dump());
    ASSERT_TRUE(back.ok()) << MessageJson(m).dump() << ": " << back.status().message();
    EXPECT_EQ(back->index(), m.index());
    EXPECT_EQ(MessageJson(*back), MessageJson(m));
  }
}

TEST(MigrationMessages, DiskMembersAreCheckedAgainstTheSpec) {
  json m = Prepare();
  m["disk_bytes"] = 1024;
  EXPECT_NE(Refusal(m).find("has \"disk_bytes\" but no disk"), std::string::npos);
  m["spec"]["disk"] = "64M";
  auto parsed = ParsePeerMessage(m.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(std::get<PrepareRequest>(*parsed).disk_bytes, 1024u);
  m["disk_bytes"] = uint64_t{1} << 40;  // far beyond what a 64 MiB disk can take
  EXPECT_NE(Refusal(m).find("\"disk_bytes\" is larger than"), std::string::npos);
  m.erase("disk_bytes");
  EXPECT_NE(Refusal(m).find("has a disk but no \"disk_bytes\""), std::string::npos);
  EXPECT_NE(Refusal({{"type", "disk-link"}, {"migration", "m-1"}, {"token", "abcd"}})
                .find("\"token\" is not 32 bytes"),
            std::string::npos);
  EXPECT_NE(Refusal({{"type", "prepared"}, {"disk_token", std::string(64, 'G')}})
                .find("\"disk_token\" is not 32 bytes"),
            std::string::npos);
}

TEST(MigrationMessages, MachineTypeIsANameOrAbsent) {
  json m = Prepare();
  m["machine_type"] = "pc-q35-7.2";
  auto parsed = ParsePeerMessage(m.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(std::get<PrepareRequest>(*parsed).machine_type, "pc-q35-7.2");
  EXPECT_EQ(MessageJson(*parsed)["machine_type"], "pc-q35-7.2");
  EXPECT_EQ(std::get<PrepareRequest>(*ParsePeerMessage(Prepare().dump())).machine_type, "");
  m["machine_type"] = "pc-q35-7.2,accel=kvm";
  EXPECT_NE(Refusal(m).find("not a QEMU machine type name"), std::string::npos);
  m["machine_type"] = "";
  EXPECT_NE(Refusal(m).find("not a QEMU machine type name"), std::string::npos);
  m["machine_type"] = std::string(65, 'a');
  EXPECT_NE(Refusal(m).find("longer than 64"), std::string::npos);
}

TEST(MigrationMessages, MacThatWouldWriteQemuOptionsIsRefused) {
  json m = Prepare();
  m["mac"] = "52:54:00:00:00:01,romfile=/etc/ferry/tls/host.key";
  EXPECT_NE(Refusal(m).find("MAC of vm web-1"), std::string::npos);
}

TEST(MigrationMessages, JunkGenerationIdIsRefused) {
  json m = Prepare();
  m["vmgenid"] = "auto,x=y";
  EXPECT_NE(Refusal(m).find("generation ID of vm web-1"), std::string::npos);
}

TEST(MigrationMessages, WrongTypeOfEachMemberIsRefusedNotThrown) {
  for (const char* key : {"migration", "spec", "mac", "vmgenid", "owner", "type"}) {
    for (const json& wrong : {json(7), json::array({1}), json(true), json(nullptr)}) {
      json m = Prepare();
      m[key] = wrong;
      Refusal(m);
    }
  }
  for (const char* key : {"name", "memory_mib", "cpus", "network", "disk", "policy", "image"}) {
    json m = Prepare();
    m["spec"][key] = json::array({json::object()});
    Refusal(m);
  }
  Refusal({{"type", "failed"}, {"error", 3}});
  Refusal({{"type", "state"}, {"state", json::object()}});
  Refusal({{"type", "query"}, {"migration", "a"}, {"vm", 1}});
}

TEST(MigrationMessages, UnknownMembersAndTypesAreRefused) {
  json m = Prepare();
  m["disk_path"] = "/etc/shadow";
  EXPECT_NE(Refusal(m).find("unknown member \"disk_path\""), std::string::npos);
  EXPECT_NE(Refusal({{"type", "prepared"}, {"x", 1}}).find("unknown member"), std::string::npos);
  EXPECT_NE(Refusal({{"type", "launch"}}).find("unknown type"), std::string::npos);
  Refusal({{"kind", "prepare"}});
  Refusal({{"type", "state"}, {"state", "maybe"}});
}

TEST(MigrationMessages, PolicyAndOwnerTravelTogether) {
  json m = Prepare();
  m["owner"] = std::string(64, 'a');
  EXPECT_NE(Refusal(m).find("no policy"), std::string::npos);
  m = Prepare();
  m["spec"]["policy"] = "{}";
  EXPECT_NE(Refusal(m).find("without the owner"), std::string::npos);
  m["owner"] = "ABC";
  EXPECT_NE(Refusal(m).find("fingerprint"), std::string::npos);
}

TEST(MigrationMessages, SizeAndDepthAreBoundedBeforeParsing) {
  // 100000 levels: refused by counting, before a JSON tree (or a stack frame per level) exists.
  std::string deep =
      R"({"type":"prepare","spec":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto parsed = ParsePeerMessage(deep);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("deeper"), std::string::npos);
  // Brackets inside strings are text, not nesting.
  json m = Prepare();
  m["mac"] = std::string(20, '[');
  EXPECT_EQ(Refusal(m).find("deeper"), std::string::npos);
  std::string big = R"({"type":"failed","error":")" + std::string(kMaxMessageBytes, 'x') + "\"}";
  ASSERT_FALSE(ParsePeerMessage(big).ok());
  EXPECT_FALSE(ParsePeerMessage("[1]").ok());
  EXPECT_FALSE(ParsePeerMessage("{\"type\":").ok());
  EXPECT_NE(Refusal({{"type", "failed"}, {"error", std::string(kMaxErrorChars + 1, 'x')}})
                .find("longer than"),
            std::string::npos);
}

TEST(MigrationMessages, ReasonsAreCutAndControlCharactersShown) {
  EXPECT_EQ(FailedBecause(std::string(10000, 'x')).error.size(), kMaxErrorChars);
  auto parsed = ParsePeerMessage(json{{"type", "abort"}, {"error", "a\x1b[2Jb\n"}}.dump());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(std::get<AbortRequest>(*parsed).error, "a?[2Jb?");
}

json HoldPrepare() {
  return {{"type", "hold-prepare"},
          {"migration", "0123456789abcdef"},
          {"vm", "web-1"},
          {"owner", std::string(64, 'a')},
          {"manifest_bytes", 4096},
          {"data_key", std::string(64, '1')},
          {"owner_secret", std::string(64, 'f')}};
}

TEST(HoldMessages, EveryHoldTypeRoundTrips) {
  auto parsed = ParsePeerMessage(HoldPrepare().dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const auto& p = std::get<HoldPrepareRequest>(*parsed);
  EXPECT_EQ(p.vm, "web-1");
  EXPECT_EQ(p.manifest_bytes, 4096u);
  EXPECT_EQ(p.data_key, std::string(32, '\x11'));
  ASSERT_TRUE(p.owner_secret);
  EXPECT_EQ(*p.owner_secret, std::string(32, '\xff'));
  EXPECT_EQ(MessageJson(*parsed), HoldPrepare());
  json unowned = HoldPrepare();
  unowned.erase("owner");
  unowned.erase("owner_secret");
  auto plain = ParsePeerMessage(unowned.dump());
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_TRUE(std::get<HoldPrepareRequest>(*plain).owner.empty());
  EXPECT_FALSE(std::get<HoldPrepareRequest>(*plain).owner_secret);
  for (const PeerMessage& m :
       std::vector<PeerMessage>{HoldPreparedReply{12345}, HoldQueryRequest{"abc-1", "web-1"},
                                StateReply{SettledState::kHeld}}) {
    auto back = ParsePeerMessage(MessageJson(m).dump());
    ASSERT_TRUE(back.ok()) << MessageJson(m).dump() << ": " << back.status().message();
    EXPECT_EQ(back->index(), m.index());
    EXPECT_EQ(MessageJson(*back), MessageJson(m));
  }
  EXPECT_STREQ(MessageType(HoldQueryRequest{"a", "b"}), "hold-query");
}

TEST(HoldMessages, ASnapshotSendNamesItsSnapshot) {
  json m = HoldPrepare();
  m["snapshot"] = "warm";
  auto parsed = ParsePeerMessage(m.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  const auto& p = std::get<HoldPrepareRequest>(*parsed);
  ASSERT_TRUE(p.snapshot);
  EXPECT_EQ(*p.snapshot, "warm");
  EXPECT_EQ(MessageJson(*parsed), m);
  EXPECT_FALSE(std::get<HoldPrepareRequest>(*ParsePeerMessage(HoldPrepare().dump())).snapshot);
  for (const json& bad : {json("../x"), json(""), json(std::string(65, 'a')), json(7)}) {
    m["snapshot"] = bad;
    EXPECT_NE(Refusal(m).find("snapshot"), std::string::npos) << bad.dump();
  }
}

TEST(HoldMessages, KeysMustBe32BytesOfLowerCaseHex) {
  for (const std::string& bad : {std::string(62, '1'), std::string(66, '1'), std::string(64, 'A'),
                                 std::string(64, 'g'), std::string()}) {
    json m = HoldPrepare();
    m["data_key"] = bad;
    EXPECT_NE(Refusal(m).find("data_key"), std::string::npos) << bad;
    m = HoldPrepare();
    m["owner_secret"] = bad;
    EXPECT_NE(Refusal(m).find("owner_secret"), std::string::npos) << bad;
  }
  json m = HoldPrepare();
  m.erase("data_key");
  EXPECT_NE(Refusal(m).find("has no \"data_key\""), std::string::npos);
}

TEST(HoldMessages, SizesAndNamesAreBounded) {
  json m = HoldPrepare();
  m["manifest_bytes"] = kMaxHoldManifestBytes + 1;
  EXPECT_NE(Refusal(m).find("larger than"), std::string::npos);
  m["manifest_bytes"] = 0;
  EXPECT_NE(Refusal(m).find("empty manifest"), std::string::npos);
  m["manifest_bytes"] = -1;
  EXPECT_NE(Refusal(m).find("non-negative"), std::string::npos);
  m["manifest_bytes"] = 1.5;
  Refusal(m);
  m = HoldPrepare();
  m["vm"] = "../../etc";
  Refusal(m);
  m = HoldPrepare();
  m["owner"] = "ABC";
  EXPECT_NE(Refusal(m).find("fingerprint"), std::string::npos);
  m = HoldPrepare();
  m["migration"] = "A/B";
  Refusal(m);
  m = HoldPrepare();
  m["extra"] = 1;
  EXPECT_NE(Refusal(m).find("unknown member"), std::string::npos);
  Refusal({{"type", "hold-prepared"}, {"chunks", kMaxHoldChunks + 1}});
  Refusal({{"type", "hold-prepared"}, {"chunks", "7"}});
  Refusal({{"type", "hold-prepared"}});
  Refusal({{"type", "hold-query"}, {"migration", "a"}});
  Refusal({{"type", "hold-query"}, {"migration", "a"}, {"vm", "web"}, {"x", 1}});
  for (const char* key :
       {"migration", "vm", "owner", "manifest_bytes", "data_key", "owner_secret"}) {
    for (const json& wrong :
         {json(7), json::array({1}), json(true), json(nullptr), json::object()}) {
      json w = HoldPrepare();
      w[key] = wrong;
      if (std::string(key) == "manifest_bytes" && wrong.is_number()) continue;
      Refusal(w);
    }
  }
}

}  // namespace
}  // namespace ferry::migrate

#include "core/event_log.h"

#include <gtest/gtest.h>

#include <thread>

namespace ferry {
namespace {

using std::chrono::milliseconds;

uint64_t SeqOf(const std::string& line) { return nlohmann::json::parse(line)["seq"]; }

TEST(EventLogTest, EventsAreNumberedFromOneAndReadAfterSince) {
  EventLog log(8);
  EXPECT_EQ(log.Publish("vm.state", {{"vm", "web-1"}, {"state", "creating"}}), 1u);
  EXPECT_EQ(log.Publish("vm.state", {{"vm", "web-1"}, {"state", "running"}}), 2u);
  EXPECT_EQ(log.Publish("vm.deleted", {{"vm", "web-1"}}), 3u);
  EventLog::Batch b = log.Read(1, 100, milliseconds(0));
  ASSERT_EQ(b.lines.size(), 2u);
  EXPECT_EQ(b.last_seq, 3u);
  EXPECT_FALSE(b.gap_from);
  auto j = nlohmann::json::parse(b.lines[0]);
  EXPECT_EQ(j["seq"], 2);
  EXPECT_EQ(j["type"], "vm.state");
  EXPECT_EQ(j["state"], "running");
  EXPECT_TRUE(j["time_ms"].is_number());
}

TEST(EventLogTest, FieldsCannotOverrideTheNumberOrType) {
  EventLog log(8);
  log.Publish("a", {{"seq", 99}, {"type", "b"}});
  auto j = nlohmann::json::parse(log.Read(0, 1, milliseconds(0)).lines.at(0));
  EXPECT_EQ(j["seq"], 1);
  EXPECT_EQ(j["type"], "a");
}

TEST(EventLogTest, ResumingGetsEveryEventOnceInOrder) {
  EventLog log(1000);
  for (int i = 0; i < 50; ++i) log.Publish("e", {{"i", i}});
  uint64_t since = 0;
  std::vector<uint64_t> seen;
  while (true) {
    auto b = log.Read(since, 7, milliseconds(0));  // small batches: many "reconnects"
    if (b.lines.empty()) break;
    for (const auto& l : b.lines) seen.push_back(SeqOf(l));
    since = b.last_seq;
  }
  ASSERT_EQ(seen.size(), 50u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST(EventLogTest, ASinceOlderThanTheRingSaysWhereItResumes) {
  EventLog log(4);
  for (int i = 0; i < 10; ++i) log.Publish("e");
  auto b = log.Read(2, 100, milliseconds(0));
  ASSERT_TRUE(b.gap_from);
  EXPECT_EQ(*b.gap_from, 7u);
  ASSERT_EQ(b.lines.size(), 4u);
  EXPECT_EQ(SeqOf(b.lines[0]), 7u);
  EXPECT_FALSE(log.Read(6, 100, milliseconds(0)).gap_from);
}

TEST(EventLogTest, AReaderWaitsForTheNextEvent) {
  EventLog log;
  std::thread publisher([&] {
    std::this_thread::sleep_for(milliseconds(20));
    log.Publish("late");
  });
  auto b = log.Read(0, 10, milliseconds(10000));
  publisher.join();
  ASSERT_EQ(b.lines.size(), 1u);
  EXPECT_EQ(SeqOf(b.lines[0]), 1u);
}

TEST(EventLogTest, CloseWakesReaders) {
  EventLog log;
  std::thread closer([&] { log.Close(); });
  auto b = log.Read(0, 10, milliseconds(60000));
  closer.join();
  EXPECT_TRUE(b.lines.empty());
  EXPECT_TRUE(log.closed());
}

TEST(EventLogTest, InvalidUtf8InFieldsIsReplacedNotThrown) {
  EventLog log;
  log.Publish("vm.state", {{"vm", std::string("a\xff")}});
  EXPECT_NO_THROW(nlohmann::json::parse(log.Read(0, 1, milliseconds(0)).lines.at(0)));
}

TEST(EventLogTest, SinceParsesDecimalNumbersOnly) {
  EXPECT_EQ(*ParseEventSince("0"), 0u);
  EXPECT_EQ(*ParseEventSince("42"), 42u);
  EXPECT_EQ(*ParseEventSince("9223372036854775807"), 9223372036854775807u);
  for (const char* bad : {"", "-1", "+1", "1x", " 1", "0x10", "9223372036854775808",
                          "99999999999999999999"}) {
    EXPECT_FALSE(ParseEventSince(bad).ok()) << bad;
  }
  EXPECT_NE(ParseEventSince("x").status().message().find("sequence number"), std::string::npos);
}

}  // namespace
}  // namespace ferry

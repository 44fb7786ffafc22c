#include "cli/progress_line.h"

#include <gtest/gtest.h>

namespace ferry::cli {
namespace {

using nlohmann::json;

constexpr int64_t kStart = 1'700'000'000'000;

json Op(const std::string& phase, int progress, const std::string& state = "running") {
  return {{"kind", "clone"}, {"target", "s1"},          {"phase", phase},
          {"progress", progress}, {"state", state}, {"started_at_ms", kStart}};
}

TEST(ProgressLineTest, ATerminalLineIsRewrittenInPlaceAndErasedAtTheEnd) {
  ProgressLine line(ProgressStyle::kTerminal, 80);
  EXPECT_EQ(line.Update(Op("cloning c1", 0), kStart + 400),
            "\r\033[Kclone s1: cloning c1 [....................] 0% 0:00");
  EXPECT_EQ(line.Update(Op("cloning c2", 50), kStart + 65'000),
            "\r\033[Kclone s1: cloning c2 [##########..........] 50% 1:05");
  EXPECT_EQ(line.Update(Op("done", 100, "succeeded"), kStart + 70'000), "\r\033[K");
  // Nothing is left to erase after that.
  EXPECT_EQ(line.Update(Op("done", 100, "succeeded"), kStart + 70'000), "");
}

TEST(ProgressLineTest, ATerminalLineNeverWraps) {
  ProgressLine line(ProgressStyle::kTerminal, 40);
  std::string text = line.Update(Op(std::string(200, 'x'), 30), kStart);
  ASSERT_EQ(text.rfind("\r\033[K", 0), 0u);
  std::string shown = text.substr(4);
  EXPECT_EQ(shown.size(), 39u) << shown;
  // The bar and percentage survive; the phase gives way.
  EXPECT_NE(shown.find("30% 0:00"), std::string::npos) << shown;
  // Multi-byte characters count as one column each, and are never cut in half.
  ProgressLine wide(ProgressStyle::kTerminal, 60);
  std::string accents;
  for (int i = 0; i < 50; ++i) accents += "\xc3\xa9";  // é
  shown = wide.Update(Op(accents, 30), kStart).substr(4);
  ASSERT_EQ(shown.rfind("clone s1: \xc3\xa9", 0), 0u) << shown;
  size_t columns = 0;
  for (unsigned char c : shown) columns += (c & 0xc0) != 0x80;
  EXPECT_EQ(columns, 59u) << shown;
  // 17 of them fit: 59 columns less "clone s1: " and the bar's 32.
  EXPECT_EQ(shown.size(), 59u + 17u) << shown;
}

TEST(ProgressLineTest, WhatAGuestNamedIsEscapedNotObeyed) {
  ProgressLine line(ProgressStyle::kTerminal, 200);
  json op = Op("resetting identity", 80);
  op["target"] = "evil\033]0;pwned\007";
  std::string text = line.Update(op, kStart);
  EXPECT_EQ(text.find('\033', 2), std::string::npos) << text;  // only the erase we wrote
  EXPECT_NE(text.find("evil\\x1b]0;pwned\\x07"), std::string::npos) << text;
}

TEST(ProgressLineTest, PlainLinesOnlyWhenThePhaseOrATenthChanges) {
  ProgressLine line(ProgressStyle::kPlain);
  EXPECT_EQ(line.Update(Op("copying RAM", 50), kStart), "clone s1: copying RAM (50%)\n");
  EXPECT_EQ(line.Update(Op("copying RAM", 55), kStart), "");
  EXPECT_EQ(line.Update(Op("copying RAM", 61), kStart), "clone s1: copying RAM (61%)\n");
  EXPECT_EQ(line.Update(Op("checksumming RAM", 61), kStart),
            "clone s1: checksumming RAM (61%)\n");
  // No carriage returns or escapes in a log; the end prints nothing (the result follows).
  EXPECT_EQ(line.Update(Op("done", 100, "succeeded"), kStart), "");
}

TEST(ProgressLineTest, QuietPrintsNothing) {
  ProgressLine line(ProgressStyle::kQuiet);
  EXPECT_EQ(line.Update(Op("copying RAM", 50), kStart), "");
  EXPECT_EQ(line.Update(Op("done", 100, "failed"), kStart), "");
  EXPECT_EQ(ProgressStyleFor(/*as_json=*/true), ProgressStyle::kQuiet);
}

TEST(ProgressLineTest, OddProgressValuesAreClamped) {
  ProgressLine line(ProgressStyle::kPlain);
  json op = Op("x", 0);
  op["progress"] = 250;
  EXPECT_EQ(line.Update(op, kStart), "clone s1: x (100%)\n");
  op["progress"] = "lots";
  EXPECT_EQ(line.Update(op, kStart), "clone s1: x (0%)\n");
}

}  // namespace
}  // namespace ferry::cli

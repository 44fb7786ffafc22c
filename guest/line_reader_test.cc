#include "guest/line_reader.h"

#include <gtest/gtest.h>

namespace ferry::guest {
namespace {

TEST(LineReaderTest, SplitsLinesAcrossFeeds) {
  LineReader reader(100);
  EXPECT_TRUE(reader.Feed("{\"id\":1,").empty());
  auto lines = reader.Feed("\"op\":\"ping\"}\n{\"id\":2}\r\npartial");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "{\"id\":1,\"op\":\"ping\"}");
  EXPECT_EQ(lines[1].text, "{\"id\":2}");  // "\r" dropped
  EXPECT_FALSE(lines[0].overlong);
  lines = reader.Feed("\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "partial");
}

TEST(LineReaderTest, EmptyLinesAreReportedEmpty) {
  LineReader reader(100);
  auto lines = reader.Feed("\n\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "");
  EXPECT_FALSE(lines[0].overlong);
}

TEST(LineReaderTest, LineAtTheLimitIsKept) {
  LineReader reader(8);
  auto lines = reader.Feed("12345678\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0].overlong);
  EXPECT_EQ(lines[0].text, "12345678");
}

TEST(LineReaderTest, OverlongLineIsReportedOnceAndDroppedUpToNewline) {
  LineReader reader(8);
  auto lines = reader.Feed("123456789");  // no newline yet: reported as soon as it is too long
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].overlong);
  EXPECT_EQ(lines[0].text, "");
  EXPECT_TRUE(reader.Feed(std::string(100000, 'x')).empty());
  lines = reader.Feed("tail\nnext\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "next");
  EXPECT_FALSE(lines[0].overlong);
}

TEST(LineReaderTest, ResetDropsPartialLine) {
  LineReader reader(100);
  reader.Feed("{\"id\":1,\"op\"");
  reader.Reset();
  auto lines = reader.Feed("{\"id\":2}\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "{\"id\":2}");
}

TEST(LineReaderTest, ResetLeavesOverlongDiscardMode) {
  LineReader reader(4);
  reader.Feed("toolong");
  reader.Reset();
  auto lines = reader.Feed("ok\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "ok");
}

}  // namespace
}  // namespace ferry::guest

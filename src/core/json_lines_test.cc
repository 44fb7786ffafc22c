#include "core/json_lines.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ferry {
namespace {

// The lines a feed produced, with errors as "ERROR".
std::vector<std::string> Lines(const std::vector<Result<std::string>>& fed) {
  std::vector<std::string> out;
  for (const auto& line : fed) out.push_back(line.ok() ? line.value() : "ERROR");
  return out;
}

using Strings = std::vector<std::string>;

TEST(JsonLineFramerTest, OneLine) {
  JsonLineFramer framer;
  EXPECT_EQ(Lines(framer.Feed("{\"a\":1}\n")), Strings{"{\"a\":1}"});
  EXPECT_EQ(framer.buffered_bytes(), 0u);
}

TEST(JsonLineFramerTest, KeepsAnIncompleteLineUntilItsNewline) {
  JsonLineFramer framer;
  EXPECT_TRUE(framer.Feed("{\"a\":").empty());
  EXPECT_EQ(framer.buffered_bytes(), 5u);
  EXPECT_EQ(Lines(framer.Feed("1}\n{\"b\"")), Strings{"{\"a\":1}"});
  EXPECT_EQ(framer.buffered_bytes(), 4u);
  EXPECT_EQ(Lines(framer.Feed(":2}\n")), Strings{"{\"b\":2}"});
}

TEST(JsonLineFramerTest, ByteByByte) {
  JsonLineFramer framer;
  const std::string stream = "first\r\nsecond\nthird\n";
  Strings lines;
  for (char c : stream) {
    for (auto& line : Lines(framer.Feed(std::string(1, c)))) lines.push_back(line);
  }
  EXPECT_EQ(lines, (Strings{"first", "second", "third"}));
}

TEST(JsonLineFramerTest, SeveralLinesInOneChunk) {
  JsonLineFramer framer;
  EXPECT_EQ(Lines(framer.Feed("a\nb\nc\nd")), (Strings{"a", "b", "c"}));
  EXPECT_EQ(Lines(framer.Feed("\n")), Strings{"d"});
}

TEST(JsonLineFramerTest, StripsCarriageReturnEvenWhenSplitFromItsNewline) {
  JsonLineFramer framer;
  EXPECT_EQ(Lines(framer.Feed("a\r\nb\r")), Strings{"a"});
  EXPECT_EQ(Lines(framer.Feed("\n")), Strings{"b"});
  // A "\r" inside a line is content.
  EXPECT_EQ(Lines(framer.Feed("c\rd\n")), Strings{"c\rd"});
}

TEST(JsonLineFramerTest, SkipsEmptyLines) {
  JsonLineFramer framer;
  EXPECT_EQ(Lines(framer.Feed("\n\r\n\na\n\n")), Strings{"a"});
}

TEST(JsonLineFramerTest, AcceptsALineOfExactlyTheLimit) {
  JsonLineFramer framer(8);
  EXPECT_EQ(Lines(framer.Feed("12345678\n")), Strings{"12345678"});
  EXPECT_EQ(Lines(framer.Feed("12345678\r")), Strings{});
  EXPECT_EQ(Lines(framer.Feed("\n")), Strings{"12345678"});
  EXPECT_EQ(Lines(framer.Feed("1234")), Strings{});
  EXPECT_EQ(Lines(framer.Feed("5678\r\n")), Strings{"12345678"});
}

TEST(JsonLineFramerTest, TooLongCompleteLineIsOneErrorThenFramingResumes) {
  JsonLineFramer framer(8);
  auto fed = framer.Feed("123456789\nok\n");
  ASSERT_EQ(fed.size(), 2u);
  EXPECT_EQ(fed[0].status().code(), Status::Code::kCorruption);
  EXPECT_NE(fed[0].status().message().find("longer than 8 bytes"), std::string::npos);
  EXPECT_EQ(fed[1].value(), "ok");
}

TEST(JsonLineFramerTest, TooLongLineInPiecesIsReportedOnceWithoutGrowingTheBuffer) {
  JsonLineFramer framer(16);
  int errors = 0;
  for (int i = 0; i < 1000; ++i) {
    for (const auto& line : framer.Feed("xxxxxxxxxx")) {
      EXPECT_FALSE(line.ok());
      ++errors;
    }
    EXPECT_LE(framer.buffered_bytes(), 17u);
  }
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(Lines(framer.Feed("tail of the long line\n{\"next\":1}\n")), Strings{"{\"next\":1}"});
}

TEST(JsonLineFramerTest, HugeChunkWithoutNewlineIsRejectedAtOnce) {
  JsonLineFramer framer(16);
  auto fed = framer.Feed(std::string(1 << 20, 'x'));
  ASSERT_EQ(fed.size(), 1u);
  EXPECT_FALSE(fed[0].ok());
  EXPECT_EQ(framer.buffered_bytes(), 0u);
  EXPECT_EQ(Lines(framer.Feed("\nnext\n")), Strings{"next"});
}

TEST(ParseJsonLineTest, ParsesAnObject) {
  auto parsed = ParseJsonLine(R"({"return": {"status": "running"}, "id": 7})");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed.value()["id"], 7);
  EXPECT_EQ(parsed.value()["return"]["status"], "running");
}

TEST(ParseJsonLineTest, BadJsonIsCorruptionWithAnEscapedExcerpt) {
  auto parsed = ParseJsonLine("{\"a\": \x01\xff garbage");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), Status::Code::kCorruption);
  const std::string& message = parsed.status().message();
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
  EXPECT_NE(message.find("\\x01\\xff"), std::string::npos) << message;
  EXPECT_EQ(message.find('\x01'), std::string::npos) << message;
}

TEST(ParseJsonLineTest, TruncatedAndInvalidUtf8AreErrorsNotExceptions) {
  EXPECT_FALSE(ParseJsonLine("{\"a\": ").ok());
  EXPECT_FALSE(ParseJsonLine("\"\xc3\x28\"").ok());
  EXPECT_FALSE(ParseJsonLine("{} {}").ok());
}

TEST(EncodeJsonLineTest, RoundTripsAsExactlyOneLine) {
  nlohmann::json value = {{"op", "identity"}, {"hostname", "a\nb"}, {"n", 3}};
  std::string line = EncodeJsonLine(value);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);

  JsonLineFramer framer;
  auto fed = framer.Feed(line);
  ASSERT_EQ(fed.size(), 1u);
  auto parsed = ParseJsonLine(fed[0].value());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value(), value);
}

TEST(EncodeJsonLineTest, InvalidUtf8IsReplacedNotThrown) {
  nlohmann::json value = {{"s", std::string("\xff\xfe")}};
  std::string line = EncodeJsonLine(value);
  EXPECT_TRUE(ParseJsonLine(line.substr(0, line.size() - 1)).ok()) << line;
}

}  // namespace
}  // namespace ferry

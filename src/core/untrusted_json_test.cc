#include "core/untrusted_json.h"

#include <gtest/gtest.h>

#include "core/json_lines.h"

namespace ferry {
namespace {

std::string Nested(int levels, char open, char close) {
  return std::string(levels, open) + std::string(levels, close);
}

TEST(CheckJsonDepthTest, CountsBracketsOutsideStringsOnly) {
  EXPECT_TRUE(CheckJsonDepth(R"({"a": [1, {"b": []}]})", 4).ok());
  EXPECT_FALSE(CheckJsonDepth(R"({"a": [1, {"b": []}]})", 3).ok());
  // Brackets inside strings, escaped quotes included, do not count.
  EXPECT_TRUE(CheckJsonDepth(R"({"a": "[[[[\"[[[[", "b": "\\"})", 1).ok());
  EXPECT_TRUE(CheckJsonDepth("]]]]", 1).ok());  // unbalanced: the parser's business
}

TEST(ParseUntrustedJsonTest, ParsesWithinLimits) {
  auto v = ParseUntrustedJson(R"({"id": 1, "ok": true})", "test");
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ((*v)["id"], 1);
}

// 100000 levels fit easily in a 1 MiB line; the parse must refuse them before building anything
// that a copy or dump() would recurse through.
TEST(ParseUntrustedJsonTest, RefusesDeepNestingBeforeParsing) {
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100000, '}');
  for (const std::string& deep : {Nested(100000, '[', ']'), objects}) {
    auto v = ParseUntrustedJson(deep, "guest channel of vm web-1");
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), Status::Code::kCorruption);
    EXPECT_NE(v.status().message().find("guest channel of vm web-1: JSON nested deeper than 64"),
              std::string::npos)
        << v.status().message();
  }
  EXPECT_TRUE(ParseUntrustedJson(Nested(64, '[', ']'), "x").ok());
  EXPECT_FALSE(ParseUntrustedJson(Nested(65, '[', ']'), "x").ok());
}

TEST(ParseUntrustedJsonTest, RefusesOversizeText) {
  std::string big = "\"" + std::string(2000, 'a') + "\"";
  auto v = ParseUntrustedJson(big, "API request body", JsonLimits{1000, 64});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("API request body: JSON text of 2002 bytes"),
            std::string::npos)
      << v.status().message();
  EXPECT_TRUE(ParseUntrustedJson(big, "x", JsonLimits{2002, 64}).ok());
}

TEST(ParseUntrustedJsonTest, SyntaxErrorsAreEscapedNotThrown) {
  auto v = ParseUntrustedJson("{\"a\": \x1b[31m", "peer");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message().find('\x1b'), std::string::npos) << v.status().message();
  EXPECT_NE(v.status().message().find("\\x1b"), std::string::npos) << v.status().message();
}

TEST(ParseJsonLineTest, RefusesDeepNesting) {
  auto v = ParseJsonLine(R"({"id": 1, "x": )" + Nested(100000, '[', ']') + "}");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("nested deeper"), std::string::npos);
}

}  // namespace
}  // namespace ferry

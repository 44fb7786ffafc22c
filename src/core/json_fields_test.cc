#include "core/json_fields.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

using nlohmann::json;

JsonFields Fields(const json& j) {
  auto f = JsonFields::Of(j, "guest ping reply of vm web-1");
  EXPECT_TRUE(f.ok());
  return std::move(f).value();
}

TEST(JsonFieldsTest, ReadsEachTypeWhenItMatches) {
  const json j = {{"s", "x"},    {"b", true},        {"i", -3},
                  {"u", 7},      {"d", 1.5},         {"o", {{"k", 1}}},
                  {"a", {1, 2}}, {"ss", {"p", "q"}}, {"os", {{{"k", 1}}, {{"k", 2}}}}};
  JsonFields f = Fields(j);
  EXPECT_EQ(*f.String("s"), "x");
  EXPECT_TRUE(*f.Bool("b"));
  EXPECT_EQ(*f.Int("i"), -3);
  EXPECT_EQ(*f.Int("u"), 7);
  EXPECT_EQ(*f.Uint("u"), 7u);
  EXPECT_EQ(*f.Number("d"), 1.5);
  EXPECT_EQ(*f.Number("u"), 7.0);
  EXPECT_EQ(*f.Object("o")->Int("k"), 1);
  EXPECT_EQ((*f.Array("a"))->size(), 2u);
  EXPECT_EQ(*f.Strings("ss"), (std::vector<std::string>{"p", "q"}));
  auto os = f.Objects("os");
  ASSERT_TRUE(os.ok());
  EXPECT_EQ(*(*os)[1].Int("k"), 2);
}

// The failure nlohmann's value("ready", false) turns into an exception: here an error naming
// the member and the source.
TEST(JsonFieldsTest, WrongTypeIsAnErrorNamingMemberAndSource) {
  const json j = {{"ready", "x"}, {"n", 1.5}, {"neg", -1}, {"big", UINT64_MAX}, {"ss", {"a", 1}}};
  JsonFields f = Fields(j);
  auto ready = f.Bool("ready", false);
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(ready.status().message(),
            "guest ping reply of vm web-1: member \"ready\" must be a boolean, not string");
  EXPECT_FALSE(f.Int("n").ok());
  EXPECT_NE(f.Int("n").status().message().find("not a fraction"), std::string::npos);
  EXPECT_FALSE(f.Uint("neg").ok());
  EXPECT_FALSE(f.Int("big").ok());
  EXPECT_FALSE(f.String("n").ok());
  EXPECT_FALSE(f.Object("ready").ok());
  EXPECT_FALSE(f.Array("ready").ok());
  auto ss = f.Strings("ss");
  ASSERT_FALSE(ss.ok());
  EXPECT_NE(ss.status().message().find("element 1 is number"), std::string::npos);
  EXPECT_FALSE(f.Objects("ss").ok());
}

TEST(JsonFieldsTest, MissingIsAnErrorUnlessOptional) {
  const json j = {{"nothing", nullptr}};
  JsonFields f = Fields(j);
  auto s = f.String("hostname");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "guest ping reply of vm web-1: member \"hostname\" is missing");
  EXPECT_EQ(*f.String("hostname", "dflt"), "dflt");
  EXPECT_EQ(*f.Bool("nothing", true), true);
  EXPECT_EQ(*f.Int("nothing", 4), 4);
  EXPECT_EQ(*f.Number("nothing", 2.5), 2.5);
  EXPECT_FALSE(f.Has("nothing"));
  EXPECT_FALSE(f.Bool("nothing").ok());  // required: null is not a boolean
}

TEST(JsonFieldsTest, NestedSourcesSayWhere) {
  const json j = {{"identity", {{"macs", {{{"mac", 5}}}}}}};
  auto mac = Fields(j).Object("identity")->Objects("macs")->at(0).String("mac");
  ASSERT_FALSE(mac.ok());
  EXPECT_EQ(mac.status().message(),
            "guest ping reply of vm web-1, in \"identity\", in \"macs\"[0]: member \"mac\" must be "
            "a string, not number");
}

TEST(JsonFieldsTest, OfRefusesNonObjectsWithTheGivenCode) {
  auto f = JsonFields::Of(json::array(), "API request body", Status::Code::kInvalidArgument);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(f.status().message(), "API request body: must be a JSON object, not array");
}

}  // namespace
}  // namespace ferry

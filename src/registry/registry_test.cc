#include "registry/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "registry/table.h"

namespace ferry::registry {
namespace {

using ::testing::HasSubstr;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-registry-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/registry.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `sql` on the database file as another program would, past the registry.
  void ExecOnFile(const char* sql) {
    sqlite3* db;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }

  std::string dir_, path_;
};

// A row type for the typed table's tests.
struct CounterRow {
  int64_t n = 0;
  static constexpr std::string_view kKind = "counter";
  nlohmann::json ToJson() const { return {{"n", n}}; }
  static Result<CounterRow> FromJson(const std::string& name, const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("n") || !j["n"].is_number_integer()) {
      return Status::Corruption("counter " + name + " has no integer n");
    }
    return CounterRow{j["n"].get<int64_t>()};
  }
};

TEST_F(RegistryTest, RowsSurviveReopeningEachUnderItsKind) {
  {
    auto reg = std::move(Registry::Open(path_)).value();
    ASSERT_TRUE(reg->Insert(kVmKind, "web-1", {{"a", 1}}).ok());
    ASSERT_TRUE(reg->Insert("snapshot", "web-1", {{"b", 2}}).ok());
    ASSERT_TRUE(reg->Update(kVmKind, "web-1", {{"a", 3}}).ok());
    ASSERT_TRUE(reg->Put("snapshot", "s2", {{"b", 4}}).ok());
  }
  auto reg = std::move(Registry::Open(path_)).value();
  auto vm = reg->Get(kVmKind, "web-1");
  ASSERT_TRUE(vm.ok() && vm->has_value());
  EXPECT_EQ((**vm)["a"], 3);
  auto snapshots = reg->List("snapshot");
  ASSERT_TRUE(snapshots.ok());
  ASSERT_EQ(snapshots->size(), 2u);
  EXPECT_EQ((*snapshots)[0].first, "s2");
  EXPECT_EQ((*snapshots)[1].second["b"], 2);
  EXPECT_TRUE(reg->List("template")->empty());
}

TEST_F(RegistryTest, NamesAreUniqueWithinAKindAndDeletesStick) {
  auto reg = std::move(Registry::Open(path_)).value();
  ASSERT_TRUE(reg->Insert(kVmKind, "web-1", {{"a", 1}}).ok());
  Status dup = reg->Insert(kVmKind, "web-1", {{"a", 1}});
  EXPECT_EQ(dup.code(), Status::Code::kAlreadyExists);
  EXPECT_THAT(dup.message(), HasSubstr("vm web-1 already exists"));
  ASSERT_TRUE(reg->Insert("peer", "h2", {{"address", "x"}}).ok());
  EXPECT_THAT(reg->Insert("peer", "h2", {{"address", "y"}}).message(),
              HasSubstr("peer h2 already exists"));
  ASSERT_TRUE(reg->Delete(kVmKind, "web-1").ok());
  EXPECT_FALSE(reg->Get(kVmKind, "web-1")->has_value());
  Status update = reg->Update(kVmKind, "web-1", {{"a", 2}});
  EXPECT_EQ(update.code(), Status::Code::kNotFound);
  EXPECT_THAT(update.message(), HasSubstr("vm web-1 is not registered"));
  EXPECT_EQ(reg->Update("peer", "h3", {}).code(), Status::Code::kNotFound);
}

TEST_F(RegistryTest, ATypedTableReadsWhatItWrote) {
  auto reg = std::move(Registry::Open(path_)).value();
  Table<CounterRow> counters(*reg);
  ASSERT_TRUE(counters.Insert("a", CounterRow{7}).ok());
  ASSERT_TRUE(counters.Put("b", CounterRow{8}).ok());
  auto a = counters.Find("a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->n, 7);
  EXPECT_FALSE(counters.Find("c")->has_value());
  auto all = counters.List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].second.n, 8);
}

TEST_F(RegistryTest, ADamagedRowIsAnErrorNamingItOrLeftOutWhenTheCallerSaysSo) {
  auto reg = std::move(Registry::Open(path_)).value();
  Table<CounterRow> counters(*reg);
  ASSERT_TRUE(counters.Insert("good", CounterRow{1}).ok());
  ASSERT_TRUE(reg->Put(CounterRow::kKind, "bad", {{"n", "one"}}).ok());
  auto all = counters.List();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(all.status().message(), HasSubstr("counter bad"));
  EXPECT_THAT(all.status().message(), HasSubstr(path_));
  EXPECT_FALSE(counters.Find("bad").ok());
  std::vector<std::string> told;
  auto readable = counters.List([&](const Status& st) {
    told.push_back(st.message());
    return true;
  });
  ASSERT_TRUE(readable.ok());
  ASSERT_EQ(readable->size(), 1u);
  EXPECT_EQ((*readable)[0].first, "good");
  ASSERT_EQ(told.size(), 1u);
  EXPECT_THAT(told[0], HasSubstr("counter bad"));
}

TEST_F(RegistryTest, TextThatIsNotJsonIsCorruptionNamingTheRow) {
  { ASSERT_TRUE(Registry::Open(path_).ok()); }
  ExecOnFile("INSERT INTO objects VALUES('peer', 'h2', '{not json');");
  auto reg = std::move(Registry::Open(path_)).value();
  auto peers = reg->List("peer");
  ASSERT_FALSE(peers.ok());
  EXPECT_EQ(peers.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(peers.status().message(), HasSubstr("peer h2 is not valid JSON"));
}

TEST_F(RegistryTest, AFileThatIsNotARegistryIsRefusedByName) {
  {
    std::ofstream f(path_);
    f << "this is not a database, just text that happens to be here";
  }
  auto reg = Registry::Open(path_);
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(reg.status().message(), HasSubstr(path_));
}

TEST_F(RegistryTest, AnotherProgramsDatabaseIsRefused) {
  ExecOnFile("CREATE TABLE t(x); INSERT INTO t VALUES(1);");
  auto reg = Registry::Open(path_);
  ASSERT_FALSE(reg.ok());
  EXPECT_THAT(reg.status().message(), HasSubstr("wrong application id"));
}

TEST_F(RegistryTest, ANewerSchemaIsRefused) {
  { ASSERT_TRUE(Registry::Open(path_).ok()); }
  ExecOnFile("PRAGMA user_version=99;");
  auto reg = Registry::Open(path_);
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(reg.status().message(), HasSubstr("newer than this ferryd"));
}

}  // namespace
}  // namespace ferry::registry

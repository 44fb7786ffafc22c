// The registry's VM table (registry::Table<VmRecord>): what ferryd re-adopts from at start-up.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "registry/table.h"
#include "vm/vm_record.h"

namespace ferry::vm {
namespace {

using ::testing::HasSubstr;
using VmRows = registry::Table<VmRecord>;

class VmRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-vm-rows-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/registry.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static VmRecord Sample(const std::string& name) {
    VmRecord r;
    r.spec = *VmSpec::FromJson(
        {{"name", name}, {"memory", "512M"}, {"network", {{"forwards", {"16379:6379"}}}}});
    r.id = "0123456789abcdef";
    r.state = VmState::kRunning;
    r.accelerator = qemu::Accelerator::kTcg;
    r.mac = "52:54:00:01:02:03";
    r.ram_path = "/dev/shm/ferry/0123456789abcdef.ram";
    r.pid = 4242;
    r.pid_start_time = 99999;
    r.guest_ready = true;
    r.created_at_ms = 1;
    r.started_at_ms = 2;
    r.ready_at_ms = 3;
    r.qemu_argv = {"qemu-system-x86_64", "-m", "512M"};
    return r;
  }

  std::string dir_, path_;
};

TEST_F(VmRowsTest, RecordsSurviveReopening) {
  {
    auto reg = std::move(registry::Registry::Open(path_)).value();
    VmRows rows(*reg);
    ASSERT_TRUE(rows.Insert("web-1", Sample("web-1")).ok());
    ASSERT_TRUE(rows.Insert("web-2", Sample("web-2")).ok());
    VmRecord changed = Sample("web-2");
    changed.state = VmState::kFailed;
    changed.failure = "QEMU (pid 4242) was killed by signal 9 (Killed)";
    ASSERT_TRUE(rows.Update("web-2", changed).ok());
  }
  auto reg = std::move(registry::Registry::Open(path_)).value();
  auto all = VmRows(*reg).List();
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(all->size(), 2u);
  const VmRecord& one = (*all)[0].second;
  EXPECT_EQ((*all)[0].first, "web-1");
  EXPECT_EQ(one.spec, Sample("web-1").spec);
  EXPECT_EQ(one.pid, 4242);
  EXPECT_EQ(one.pid_start_time, 99999u);
  EXPECT_EQ(one.ram_path, Sample("web-1").ram_path);
  EXPECT_EQ(one.qemu_argv, Sample("web-1").qemu_argv);
  EXPECT_TRUE(one.guest_ready);
  EXPECT_EQ((*all)[1].second.state, VmState::kFailed);
  EXPECT_THAT((*all)[1].second.failure, HasSubstr("signal 9"));
}

TEST_F(VmRowsTest, ADamagedRecordIsReportedWithTheVmName) {
  {
    auto reg = std::move(registry::Registry::Open(path_)).value();
    ASSERT_TRUE(VmRows(*reg).Insert("web-1", Sample("web-1")).ok());
  }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "UPDATE vms SET record='{\"spec\":{}}' WHERE name='web-1';", nullptr, nullptr,
               nullptr);
  sqlite3_close(db);
  auto reg = std::move(registry::Registry::Open(path_)).value();
  auto all = VmRows(*reg).List();
  ASSERT_FALSE(all.ok());
  EXPECT_THAT(all.status().message(), HasSubstr("vm web-1"));
}

TEST_F(VmRowsTest, ARowHoldingAnotherVmIsRefused) {
  auto reg = std::move(registry::Registry::Open(path_)).value();
  ASSERT_TRUE(reg->Insert(registry::kVmKind, "web-1", Sample("web-2").ToJson()).ok());
  auto found = VmRows(*reg).Find("web-1");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(found.status().message(), HasSubstr("holds vm web-2"));
}

}  // namespace
}  // namespace ferry::vm

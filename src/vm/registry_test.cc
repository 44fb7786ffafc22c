#include "vm/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ferry::vm {
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

  static VmRecord Sample(const std::string& name) {
    VmRecord r;
    r.spec = *VmSpec::FromJson({{"name", name}, {"memory", "512M"},
                                {"network", {{"forwards", {"16379:6379"}}}}});
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

TEST_F(RegistryTest, RecordsSurviveReopening) {
  {
    auto reg = Registry::Open(path_);
    ASSERT_TRUE(reg.ok()) << reg.status().message();
    ASSERT_TRUE((*reg)->InsertVm(Sample("web-1")).ok());
    ASSERT_TRUE((*reg)->InsertVm(Sample("web-2")).ok());
    VmRecord changed = Sample("web-2");
    changed.state = VmState::kFailed;
    changed.failure = "QEMU (pid 4242) was killed by signal 9 (Killed)";
    ASSERT_TRUE((*reg)->UpdateVm(changed).ok());
  }
  auto reg = Registry::Open(path_);
  ASSERT_TRUE(reg.ok());
  auto all = (*reg)->ListVms();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  const VmRecord& one = (*all)[0];
  EXPECT_EQ(one.spec, Sample("web-1").spec);
  EXPECT_EQ(one.pid, 4242);
  EXPECT_EQ(one.pid_start_time, 99999u);
  EXPECT_EQ(one.ram_path, Sample("web-1").ram_path);
  EXPECT_EQ(one.qemu_argv, Sample("web-1").qemu_argv);
  EXPECT_TRUE(one.guest_ready);
  EXPECT_EQ((*all)[1].state, VmState::kFailed);
  EXPECT_THAT((*all)[1].failure, HasSubstr("signal 9"));
}

TEST_F(RegistryTest, NamesAreUniqueAndDeletesStick) {
  auto reg = std::move(Registry::Open(path_)).value();
  ASSERT_TRUE(reg->InsertVm(Sample("web-1")).ok());
  Status dup = reg->InsertVm(Sample("web-1"));
  EXPECT_EQ(dup.code(), Status::Code::kAlreadyExists);
  EXPECT_THAT(dup.message(), HasSubstr("vm web-1 already exists"));
  ASSERT_TRUE(reg->DeleteVm("web-1").ok());
  EXPECT_EQ(reg->GetVm("web-1").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(reg->UpdateVm(Sample("web-1")).code(), Status::Code::kNotFound);
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
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto reg = Registry::Open(path_);
  ASSERT_FALSE(reg.ok());
  EXPECT_THAT(reg.status().message(), HasSubstr("wrong application id"));
}

TEST_F(RegistryTest, ANewerSchemaIsRefused) {
  { ASSERT_TRUE(Registry::Open(path_).ok()); }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=99;", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto reg = Registry::Open(path_);
  ASSERT_FALSE(reg.ok());
  EXPECT_EQ(reg.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(reg.status().message(), HasSubstr("newer than this ferryd"));
}

TEST_F(RegistryTest, ADamagedRecordIsReportedWithTheVmName) {
  {
    auto reg = std::move(Registry::Open(path_)).value();
    ASSERT_TRUE(reg->InsertVm(Sample("web-1")).ok());
  }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "UPDATE vms SET record='{\"spec\":{}}' WHERE name='web-1';", nullptr, nullptr,
               nullptr);
  sqlite3_close(db);
  auto reg = std::move(Registry::Open(path_)).value();
  auto all = reg->ListVms();
  ASSERT_FALSE(all.ok());
  EXPECT_THAT(all.status().message(), HasSubstr("vm web-1"));
}

}  // namespace
}  // namespace ferry::vm

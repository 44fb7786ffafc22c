#include "vm/vm_disk.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/files.h"

namespace ferry::vm {
namespace {

// Uses the real qemu-img: the format of the images is what matters.
class VmDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ferry-disk-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { RemoveAll(dir_); }

  nlohmann::json Info(const std::string& path) {
    std::string out;
    FILE* p = popen(("qemu-img info --output=json -U " + path).c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return nlohmann::json::parse(out);
  }

  std::string dir_;
};

TEST_F(VmDiskTest, BlankDiskAndOverlayAreQcow2WithTheRightSizeAndBacking) {
  const std::string base = dir_ + "/base.qcow2", top = dir_ + "/top.qcow2";
  ASSERT_TRUE(CreateBlankDisk("qemu-img", base, 64).ok());
  auto info = Info(base);
  EXPECT_EQ(info["format"], "qcow2");
  EXPECT_EQ(info["virtual-size"], 64u << 20);
  struct stat st;
  ASSERT_EQ(::stat(base.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ASSERT_TRUE(CreateOverlay("qemu-img", top, base).ok());
  info = Info(top);
  EXPECT_EQ(info["backing-filename"], base);
  EXPECT_EQ(info["virtual-size"], 64u << 20);
}

TEST_F(VmDiskTest, AnExistingImageIsNeverReplaced) {
  const std::string base = dir_ + "/base.qcow2";
  ASSERT_TRUE(CreateBlankDisk("qemu-img", base, 64).ok());
  std::string before = *ReadFile(base);
  Status again = CreateBlankDisk("qemu-img", base, 128);
  EXPECT_EQ(again.code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(*ReadFile(base), before);
}

TEST_F(VmDiskTest, FailuresSayWhatQemuImgSaidAndLeaveNothing) {
  const std::string top = dir_ + "/top.qcow2";
  Status missing = CreateOverlay("qemu-img", top, dir_ + "/no-such-base.qcow2");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no-such-base.qcow2"), std::string::npos) << missing.message();
  struct stat st;
  EXPECT_NE(::stat(top.c_str(), &st), 0);
  EXPECT_FALSE(CreateOverlay("qemu-img", top, "relative.qcow2").ok());
}

}  // namespace
}  // namespace ferry::vm

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

TEST_F(VmDiskTest, TheBackingFileIsReadFromTheQcow2Header) {
  const std::string base = dir_ + "/base.qcow2", top = dir_ + "/top.qcow2";
  ASSERT_TRUE(CreateBlankDisk("qemu-img", base, 64).ok());
  ASSERT_TRUE(CreateOverlay("qemu-img", top, base).ok());
  auto backing = Qcow2BackingFile(top);
  ASSERT_TRUE(backing.ok()) << backing.status().message();
  EXPECT_EQ(*backing, base);
  EXPECT_EQ(*Qcow2BackingFile(base), "");

  EXPECT_EQ(Qcow2BackingFile(dir_ + "/missing.qcow2").status().code(), Status::Code::kNotFound);
  const std::string junk = dir_ + "/junk";
  ASSERT_TRUE(WriteFileAtomic(junk, "not an image at all", 0600).ok());
  EXPECT_EQ(Qcow2BackingFile(junk).status().code(), Status::Code::kCorruption);
  // A header whose backing name runs past the end of the file.
  std::string header = *ReadFile(top);
  header.resize(4096);
  header[16] = header[17] = '\0';
  header[18] = 0x03;
  header[19] = static_cast<char>(0xff);  // 1023 bytes
  header[8] = header[9] = header[10] = header[11] = header[12] = header[13] = '\0';
  header[14] = 0x0f;
  header[15] = 0x00;  // at 3840: 3840 + 1023 > 4096
  const std::string cut = dir_ + "/cut.qcow2";
  ASSERT_TRUE(WriteFileAtomic(cut, header, 0600).ok());
  EXPECT_EQ(Qcow2BackingFile(cut).status().code(), Status::Code::kCorruption);
}

TEST_F(VmDiskTest, OnlyAChainFerryMadeIsTakenForACopy) {
  const std::string base = dir_ + "/base.qcow2", top = dir_ + "/top.qcow2";
  ASSERT_TRUE(CreateBlankDisk("qemu-img", base, 64).ok());
  ASSERT_TRUE(CreateOverlay("qemu-img", top, base).ok());
  auto bytes = CheckedDiskChainBytes(top, {base});
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  EXPECT_GT(*bytes, 0u);
  // The overlay's header names another base than the one recorded.
  const std::string other = dir_ + "/other.qcow2";
  ASSERT_TRUE(CreateBlankDisk("qemu-img", other, 64).ok());
  auto foreign = CheckedDiskChainBytes(top, {other});
  EXPECT_EQ(foreign.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(foreign.status().message().find("not the chain ferry made"), std::string::npos);
  // The last image may name no backing file at all.
  EXPECT_FALSE(CheckedDiskChainBytes(top, {}).ok());
  // Not qcow2: a raw image.
  const std::string raw = dir_ + "/raw.img";
  ASSERT_TRUE(WriteFileAtomic(raw, std::string(1 << 16, '\0')).ok());
  auto not_qcow2 = CheckedDiskChainBytes(raw, {});
  EXPECT_EQ(not_qcow2.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(not_qcow2.status().message().find("moves only the qcow2 disks it made"),
            std::string::npos);
}

}  // namespace
}  // namespace ferry::vm

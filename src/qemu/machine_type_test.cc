#include "qemu/machine_type.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "qemu/migration_stream_for_test.h"

namespace ferry::qemu {
namespace {

std::string Or(const Result<std::string>& r) {
  return r.ok() ? *r : "error: " + r.status().message();
}

TEST(MachineTypeTest, Q35IsTheReleasesOwnMachineType) {
  EXPECT_EQ(Q35MachineType({7, 2, 22}), "pc-q35-7.2");
  EXPECT_EQ(Q35MachineType({10, 0, 2}), "pc-q35-10.0");
  EXPECT_EQ(Q35MachineType({}), "");
}

TEST(MachineTypeTest, ReadFromTheFirstBytesOfQemusOwnStreams) {
  const Bytes s72 = ReadTestStream("pattern_running.mig.gz");
  const Bytes s10 = ReadTestStream("qemu10_pattern_running.mig.gz");
  EXPECT_EQ(Or(StreamMachineType(s72)), "pc-q35-7.2");
  EXPECT_EQ(Or(StreamMachineType(s10)), "pc-q35-10.0");
  // Just the prefix is enough; a prefix cut inside the name is not.
  EXPECT_EQ(Or(StreamMachineType(std::span(s72).first(kMachineTypePrefixBytes))), "pc-q35-7.2");
  EXPECT_FALSE(StreamMachineType(std::span(s72).first(16)).ok());
}

TEST(MachineTypeTest, NotAStreamIsRefused) {
  const std::string text = "this is not QEMU's migration stream at all, just some text";
  auto machine =
      StreamMachineType(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  EXPECT_FALSE(machine.ok());
}

TEST(MachineTypeTest, ReadFromAFile) {
  const Bytes s10 = ReadTestStream("qemu10_pattern_running.mig.gz");
  char path[] = "/tmp/ferry-machine-type-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, s10.data(), 4096), 4096);
  ::close(fd);
  EXPECT_EQ(Or(FileMachineType(path)), "pc-q35-10.0");
  ::unlink(path);
  auto missing = FileMachineType(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path), std::string::npos);
}

TEST(MachineTypeTest, OnlyTheSameReleaseLoadsAStream) {
  EXPECT_TRUE(CheckMachineTypeLoads("pc-q35-7.2", {7, 2, 22}).ok());
  EXPECT_TRUE(CheckMachineTypeLoads("pc-q35-7.2", {7, 2, 0}).ok());
  Status refused = CheckMachineTypeLoads("pc-q35-7.2", {10, 0, 2});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(refused.message().find("pc-q35-7.2"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("10.0.2"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("pc-q35-10.0"), std::string::npos) << refused.message();
  // An unknown host version cannot be judged here: QEMU decides.
  EXPECT_TRUE(CheckMachineTypeLoads("pc-q35-7.2", {}).ok());
}

}  // namespace
}  // namespace ferry::qemu

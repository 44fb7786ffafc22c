#include "qemu/qemu_version.h"

#include <gtest/gtest.h>

namespace ferry::qemu {
namespace {

TEST(QemuVersionTest, ParsesDebianBuilds) {
  auto v72 = ParseQemuVersion(
      "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"
      "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n");
  ASSERT_TRUE(v72.ok()) << v72.status().message();
  EXPECT_EQ(*v72, (QemuVersion{7, 2, 22}));
  auto v10 = ParseQemuVersion(
      "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright ...\n");
  ASSERT_TRUE(v10.ok()) << v10.status().message();
  EXPECT_EQ(*v10, (QemuVersion{10, 0, 2}));
  EXPECT_EQ(v10->ToString(), "10.0.2");
  auto plain = ParseQemuVersion("QEMU emulator version 9.0.0\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, (QemuVersion{9, 0, 0}));
}

TEST(QemuVersionTest, RefusesOtherText) {
  for (const char* text : {"", "qemu-img version 7.2.22\n", "QEMU emulator version 7.2\n",
                           "QEMU emulator version 7.2.x\n", "QEMU emulator version 0.9.1\n",
                           "QEMU emulator version 12345.0.0\n",
                           "QEMU emulator version 7.2.22-rc1\n", "QEMU emulator version .2.22\n"}) {
    EXPECT_FALSE(ParseQemuVersion(text).ok()) << text;
  }
}

TEST(QemuVersionTest, ComparesMajorThenMinor) {
  EXPECT_FALSE((QemuVersion{7, 2, 22}).AtLeast(9, 0));
  EXPECT_FALSE((QemuVersion{8, 2, 0}).AtLeast(9, 0));
  EXPECT_TRUE((QemuVersion{9, 0, 0}).AtLeast(9, 0));
  EXPECT_TRUE((QemuVersion{10, 0, 2}).AtLeast(9, 0));
  EXPECT_FALSE((QemuVersion{9, 2, 0}).AtLeast(10, 0));
  // Unknown reads as older than every release.
  EXPECT_FALSE(QemuVersion{}.known());
  EXPECT_FALSE(QemuVersion{}.AtLeast(7, 2));
  EXPECT_EQ(QemuVersion{}.ToString(), "unknown");
}

TEST(QemuVersionTest, ProbeReportsABinaryThatDoesNotRun) {
  EXPECT_FALSE(ProbeQemuVersion("/nonexistent/qemu-system-x86_64", "/tmp").ok());
  // /bin/false runs but exits 1 without a version.
  EXPECT_FALSE(ProbeQemuVersion("/bin/false", "/tmp").ok());
}

}  // namespace
}  // namespace ferry::qemu

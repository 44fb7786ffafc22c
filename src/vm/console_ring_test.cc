#include "vm/console_ring.h"

#include <gtest/gtest.h>

#include <string>

#include "core/files.h"
#include "crypto/temp_dir_for_test.h"

namespace ferry::vm {
namespace {

TEST(ConsoleRingTest, StaysUnderItsCapKeepingTheNewestOutput) {
  crypto::TempDirForTest dir;
  const std::string path = dir.path() + "/console.log";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(100, 'a'), 0600).ok());
  auto r = RotateConsoleIfOver(path, 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);  // under the cap: untouched
  ASSERT_TRUE(WriteFileAtomic(path, std::string(3000, 'a') + std::string(500, 'b'), 0600).ok());
  r = RotateConsoleIfOver(path, 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_EQ(ReadFile(path).value(), "");
  EXPECT_EQ(ReadFile(path + ".1").value(), std::string(500, 'a') + std::string(500, 'b'));
  ASSERT_TRUE(WriteFileAtomic(path, "new\n", 0600).ok());
  EXPECT_EQ(ConsoleTail(path, 10), std::string(6, 'b') + "new\n");
}

TEST(ConsoleRingTest, MissingConsoleIsNotAnError) {
  crypto::TempDirForTest dir;
  auto r = RotateConsoleIfOver(dir.path() + "/console.log", 10);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

}  // namespace
}  // namespace ferry::vm

#include "migrate/image_flusher.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace ferry::migrate {
namespace {

using std::chrono::milliseconds;

TEST(ImageFlusherTest, WritesTheFileBackUntilStopped) {
  char path[] = "/tmp/ferry-image-flusher-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << std::string(1 << 20, 'x');
  auto flusher = ImageFlusher::Start(path, milliseconds(5));
  ASSERT_NE(flusher, nullptr);
  for (int i = 0; i < 400 && flusher->flushes() < 3; ++i)
    std::this_thread::sleep_for(milliseconds(5));
  EXPECT_GE(flusher->flushes(), 3);
  flusher.reset();  // stops and joins
  ::unlink(path);
}

TEST(ImageFlusherTest, AFileThatCannotBeOpenedGivesNoFlusher) {
  EXPECT_EQ(ImageFlusher::Start("/nonexistent/ferry/disk.qcow2", milliseconds(5)), nullptr);
}

}  // namespace
}  // namespace ferry::migrate

#include "core/process.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "core/files.h"
#include "core/unique_fd.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : "";
}

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ferry-process-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { RemoveAll(dir_); }
  // Runs `script` with sh and returns what it printed.
  std::string Run(const std::string& script, const SpawnOptions& options) {
    auto p = Process::Spawn({"sh", "-c", script}, dir_ + "/out", options);
    EXPECT_TRUE(p.ok()) << p.status().message();
    if (!p.ok()) return "";
    auto ex = p->WaitExit(std::chrono::seconds(10));
    EXPECT_TRUE(ex && ex->known && !ex->signaled && ex->code == 0);
    return Slurp(dir_ + "/out");
  }
  std::string dir_;
};

TEST_F(ProcessTest, InheritedDescriptorsArriveInOrderFromThreeAndNothingElse) {
  // Opened so that each lands where another must go: placing one must not clobber another.
  UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd b(::open((dir_ + "/b").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  UniqueFd unrelated(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  SpawnOptions options;
  options.inherit = {b.get(), a.get()};
  const std::string out = Run(
      "echo hello >&3; ls -l /proc/self/fd/4 | sed 's/.*-> //'; ls /proc/self/fd | sort -n | tr '\\n' ' '",
      options);
  EXPECT_EQ(Slurp(dir_ + "/b"), "hello\n");
  EXPECT_THAT(out, HasSubstr("/dev/null"));
  // 0-2, the two inherited, and the one ls itself opens to list them.
  EXPECT_THAT(out, ::testing::EndsWith("\n0 1 2 3 4 5 ")) << out;
}

TEST_F(ProcessTest, RunsAsTheGivenUserWithNoCapabilitiesFromTheRootDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change user";
  SpawnOptions options;
  options.run_as = Credentials{1879048999, 1879048998, {1879048997}};
  const std::string out = Run("id -u; id -g; id -G; pwd; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status", options);
  EXPECT_THAT(out, HasSubstr("1879048999\n1879048998\n1879048998 1879048997\n/\n"));
  EXPECT_THAT(out, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(out, HasSubstr("NoNewPrivs:\t1"));
}

}  // namespace
}  // namespace ferry

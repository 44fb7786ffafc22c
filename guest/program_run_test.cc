#include "guest/program_run.h"

#include <gtest/gtest.h>

#include <chrono>

namespace ferry::guest {
namespace {

using std::chrono::milliseconds;

TEST(RunProgramTest, CapturesOutputAndExitCode) {
  ProgramRun run =
      RunProgram({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, {}, milliseconds(10000));
  EXPECT_EQ(run.error, "");
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.output, "out\nerr\n");
}

TEST(RunProgramTest, PassesExactlyTheGivenEnvironmentAndNoStdin) {
  ProgramRun run = RunProgram({"/bin/sh", "-c", "echo \"[$FOO][$HOME]\"; cat"}, {"FOO=bar"},
                              milliseconds(10000));
  EXPECT_EQ(run.exit_code, 0) << run.error;
  EXPECT_EQ(run.output, "[bar][]\n");  // cat read /dev/null
}

TEST(RunProgramTest, SignalsAreUnblockedInTheChild) {
  // The agent blocks SIGCHLD and SIGIO for its signalfd; a child must not inherit that.
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, &old);
  ProgramRun run = RunProgram({"/bin/sh", "-c", "kill -TERM $$; sleep 5"}, {}, milliseconds(10000));
  sigprocmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(run.exit_code, -1);
  EXPECT_NE(run.error.find("killed by signal"), std::string::npos) << run.error;
}

TEST(RunProgramTest, KillsAProgramThatOverrunsItsDeadline) {
  auto start = std::chrono::steady_clock::now();
  ProgramRun run =
      RunProgram({"/bin/sh", "-c", "echo started; sleep 30 & wait"}, {}, milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(run.exit_code, -1);
  EXPECT_NE(run.error.find("did not finish within 300 ms"), std::string::npos) << run.error;
  EXPECT_EQ(run.output, "started\n");
}

TEST(RunProgramTest, MissingProgramIsAnError) {
  ProgramRun run = RunProgram({"/nonexistent/program"}, {}, milliseconds(1000));
  EXPECT_EQ(run.exit_code, -1);
  EXPECT_NE(run.error.find("/nonexistent/program"), std::string::npos);
}

TEST(RunProgramTest, OutputIsCapped) {
  ProgramRun run =
      RunProgram({"/bin/sh", "-c", "head -c 200000 /dev/zero"}, {}, milliseconds(10000));
  EXPECT_EQ(run.exit_code, 0) << run.error;
  EXPECT_EQ(run.output.size(), kMaxProgramOutputBytes);
}

}  // namespace
}  // namespace ferry::guest

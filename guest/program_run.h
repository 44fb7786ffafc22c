// RunProgram: runs one of the image's own programs (dropbearkey, udhcpc) to completion with a
// deadline and captures what it prints. ferry-guest is PID 1 with SIGCHLD blocked for its
// signalfd, so the child gets a clean signal mask and default dispositions before exec.
//
// The child is waited for by pid here, synchronously; the agent's ChildReaper reaps only from the
// event loop, which does not run meanwhile.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace ferry::guest {

// How a program run by RunProgram ended.
struct ProgramRun {
  // The exit code when it exited by itself; -1 when it could not start, was killed by a signal
  // or timed out (then `error` says which).
  int exit_code = -1;
  std::string output;  // stdout and stderr as they came, at most kMaxProgramOutputBytes
  std::string error;   // empty when it ran and exited by itself
};

inline constexpr std::size_t kMaxProgramOutputBytes = 64 * 1024;

// Runs argv[0] (an absolute path) with argv and exactly the environment `env` ("NAME=value"),
// stdin from /dev/null, stdout and stderr into one pipe. Kills it (SIGKILL) at `timeout`.
// REQUIRES: argv is not empty.
ProgramRun RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      std::chrono::milliseconds timeout);

}  // namespace ferry::guest

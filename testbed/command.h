// Runs a short-lived host program (`ip`, `openssl`, `redis-cli`, a `ferry` command) to its exit
// and hands back what it printed: the command runner of the benchmarks and the integration
// tests. Not for the programs they time or keep running: those are spawned and watched by their
// own classes (BenchFerryd, BareQemu, the tests' ferryd fixtures, Background).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::testbed {

// Runs argv (argv[0] searched in PATH) with stdout and stderr captured, for at most `timeout`
// (then it is killed). Returns the output if it exited with code 0; otherwise a Status naming
// the command, how it ended and its last line. Gives up early, killing it, when the run is
// interrupted (interrupt.h), unless `even_if_interrupted` (cleanup commands must finish after
// Ctrl-C too).
Result<std::string> RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                            bool even_if_interrupted = false);

// A finished command as a user at a shell sees it: its exit code (128 + N when killed by signal
// N) and what it printed on each stream. For a test that checks a command's failure as well as
// its success.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] searched in PATH) with stdin from /dev/null and `env` ("NAME=VALUE" each)
// added to the environment; waits for it, however long it takes.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {});

// "a b 'c d'": a command line for messages.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace ferry::testbed

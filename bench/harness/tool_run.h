// Runs a short-lived host program (`ip`, `openssl`, `redis-cli`, a local `ferry` command) to its
// exit and hands back what it printed. For the programs a benchmark drives, not for the ones it
// times: those are spawned and watched by their own classes (BenchFerryd, BareQemu).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::bench {

// Runs argv (argv[0] searched in PATH) with stdout and stderr captured, for at most `timeout`
// (then it is killed). Returns the output if it exited with code 0; otherwise a Status naming
// the command, how it ended and its last line. Gives up early, killing it, when the benchmark is
// interrupted, unless `even_if_interrupted` (cleanup commands must finish after Ctrl-C too).
Result<std::string> RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                            bool even_if_interrupted = false);

// "a b 'c d'": a command line for messages.
std::string CommandLine(const std::vector<std::string>& argv);

}  // namespace ferry::bench

// Runs a program the way a user would from a shell and captures what it printed.
#pragma once

#include <string>
#include <vector>

namespace ferry::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// How many lines of `r.err` are not progress: the CLI writes a long operation's progress to
// stderr as plain lines ("hold web: sealing (40%)") when stderr is not a terminal; an error is
// what remains, and a refusal must be one line of it.
int ErrorLines(const CommandResult& r);
// r.err without those progress lines.
std::string ErrorText(const CommandResult& r);

// Runs argv (argv[0] searched in PATH) with `env` added to the environment; waits for it.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {});

}  // namespace ferry::testing

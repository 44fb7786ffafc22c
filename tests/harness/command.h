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

// Runs argv (argv[0] searched in PATH) with `env` added to the environment; waits for it.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {});

}  // namespace ferry::testing

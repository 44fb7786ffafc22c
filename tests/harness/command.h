// Runs a program the way a user would from a shell and captures what it printed: the test bed's
// command runner (testbed/command.h), and what a test reads out of the ferry CLI's stderr.
#pragma once

#include <string>
#include <vector>

#include "testbed/command.h"

namespace ferry::testing {

using testbed::CommandResult;
using testbed::RunCommand;

// How many lines of `r.err` are not progress: the CLI writes a long operation's progress to
// stderr as plain lines ("hold web: sealing (40%)") when stderr is not a terminal; an error is
// what remains, and a refusal must be one line of it.
int ErrorLines(const CommandResult& r);
// r.err without those progress lines.
std::string ErrorText(const CommandResult& r);

}  // namespace ferry::testing

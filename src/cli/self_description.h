// A program's man page and bash completion, both made from its own CLI11 command tree, so they
// cannot drift from what the program accepts. The build runs `ferry --help-man`,
// `ferry --bash-completion` and `ferryd --help-man` and the .deb installs what they print
// (CMakeLists.txt, docs/operations.md). Subcommands and options in the group "" (hidden) are
// left out of both.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace ferry::cli {

// What the command tree does not hold: the manual section and the closing sections.
struct ManPageInfo {
  std::string section = "1";  // "8" for ferryd
  std::string version;        // "ferry 0.1.0"
  // Extra sections after the commands, in order: {"ENVIRONMENT", "roff text"}. The text is
  // roff already (the caller escapes it).
  std::vector<std::pair<std::string, std::string>> sections;
};

// roff for man(7): NAME, SYNOPSIS, DESCRIPTION (the app's description), OPTIONS, then COMMANDS
// with one subsection per command path ("ferry vm create NAME [OPTIONS]") giving its description,
// arguments and options, then `info.sections`.
std::string ManPage(const CLI::App& app, const ManPageInfo& info);

// A bash script defining the completion of `app.get_name()`: commands by position, each
// command's options after "-", nothing offered right after an option that takes a value (the
// shell's file names instead). `complete -F _NAME NAME` at its end.
std::string BashCompletion(const CLI::App& app);

// Adds hidden --help-man and --bash-completion flags to `app` that print ManPage / BashCompletion
// of it to stdout and end the parse successfully (CLI::Success), before required options or
// subcommands are checked.
void AddSelfDescriptionFlags(CLI::App& app, const ManPageInfo& info);

}  // namespace ferry::cli

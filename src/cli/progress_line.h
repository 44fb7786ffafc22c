// How a long operation (clone --count N, snapshot, migrate, hold, hold send) shows its progress
// while the CLI follows it, on stderr so stdout holds only the result:
//   - on a terminal: one line rewritten in place ("\r", erase line), cut to the terminal's
//     width so it never wraps (a wrapped line could not be rewritten), erased at the end;
//   - otherwise (a log, a pipe): a plain line each time the phase changes or the progress
//     passes a tenth, so a log shows the steps without a line per poll;
//   - with --json: nothing; the result alone.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace ferry::cli {

enum class ProgressStyle { kTerminal, kPlain, kQuiet };

class ProgressLine {
 public:
  // `width`: the terminal's columns (kTerminal only).
  explicit ProgressLine(ProgressStyle style, int width = 80) : style_(style), width_(width) {}

  // What to write for this update of an operation (ferryd's operation JSON: kind, target, phase,
  // progress, state, started_at_ms); "" for nothing. `now_ms`: the wall clock, for the elapsed
  // time shown on a terminal.
  std::string Update(const nlohmann::json& op, int64_t now_ms);

 private:
  std::string TerminalLine(const nlohmann::json& op, int64_t now_ms);
  std::string PlainLine(const nlohmann::json& op);

  ProgressStyle style_;
  int width_;
  bool drawn_ = false;      // a terminal line is showing
  std::string last_phase_;  // plain: what was last printed
  int last_tenth_ = -1;
};

// The style for this process: kQuiet with --json, kTerminal when stderr is a terminal, else
// kPlain; and a callback for ApiClient::Follow that writes each update to stderr.
ProgressStyle ProgressStyleFor(bool as_json);
std::function<void(const nlohmann::json&)> ProgressOnStderr(bool as_json);

}  // namespace ferry::cli

#include "cli/progress_line.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/terminal_text.h"

namespace ferry::cli {

using nlohmann::json;

namespace {

constexpr char kEraseLine[] = "\r\033[K";

// "web-1@3 clone: copying RAM" with what ferryd sent made safe for a terminal (it may quote a
// guest: cli/terminal_text.h).
std::string Heading(const json& op) {
  return op.value("kind", "") + " " + EscapeForTerminal(op.value("target", "")) + ": " +
         EscapeForTerminal(op.value("phase", ""));
}

int Percent(const json& op) {
  const json& p = op.contains("progress") ? op["progress"] : json();
  if (!p.is_number()) return 0;
  double v = p.get<double>();
  return v < 0 ? 0 : v > 100 ? 100 : static_cast<int>(v);
}

// "[#####.....]" for a percentage, `cells` wide inside the brackets.
std::string Bar(int percent, int cells) {
  int full = percent * cells / 100;
  return "[" + std::string(full, '#') + std::string(cells - full, '.') + "]";
}

// Cuts `text` to `columns` display cells. Escaped text is ASCII except printable UTF-8, whose
// continuation bytes take no cell of their own.
std::string FitColumns(const std::string& text, int columns) {
  int cells = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) == 0x80) continue;
    if (++cells > columns) return text.substr(0, i);
  }
  return text;
}

}  // namespace

std::string ProgressLine::TerminalLine(const json& op, int64_t now_ms) {
  if (op.value("state", "") != "running") {
    if (!drawn_) return "";
    drawn_ = false;
    return kEraseLine;
  }
  const int percent = Percent(op);
  const int64_t started = op.value("started_at_ms", int64_t{0});
  const int64_t seconds = started > 0 && now_ms > started ? (now_ms - started) / 1000 : 0;
  std::string tail = " " + Bar(percent, 20) + " " + std::to_string(percent) + "% " +
                     std::to_string(seconds / 60) + ":" + (seconds % 60 < 10 ? "0" : "") +
                     std::to_string(seconds % 60);
  // The heading gives way to the bar; one column stays free so the cursor never wraps.
  const int room = width_ - 1 - static_cast<int>(tail.size());
  std::string line = (room > 0 ? FitColumns(Heading(op), room) : "") + tail;
  drawn_ = true;
  return kEraseLine + FitColumns(line, width_ - 1);
}

std::string ProgressLine::PlainLine(const json& op) {
  if (op.value("state", "") != "running") return "";
  const std::string phase = Heading(op);
  const int tenth = Percent(op) / 10;
  if (phase == last_phase_ && tenth == last_tenth_) return "";
  last_phase_ = phase;
  last_tenth_ = tenth;
  return phase + " (" + std::to_string(Percent(op)) + "%)\n";
}

std::string ProgressLine::Update(const json& op, int64_t now_ms) {
  switch (style_) {
    case ProgressStyle::kTerminal: return TerminalLine(op, now_ms);
    case ProgressStyle::kPlain: return PlainLine(op);
    case ProgressStyle::kQuiet: return "";
  }
  return "";
}

ProgressStyle ProgressStyleFor(bool as_json) {
  if (as_json) return ProgressStyle::kQuiet;
  return ::isatty(STDERR_FILENO) ? ProgressStyle::kTerminal : ProgressStyle::kPlain;
}

std::function<void(const json&)> ProgressOnStderr(bool as_json) {
  const ProgressStyle style = ProgressStyleFor(as_json);
  int width = 80;
  winsize ws{};
  if (style == ProgressStyle::kTerminal && ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 &&
      ws.ws_col > 0) {
    width = ws.ws_col;
  }
  auto line = std::make_shared<ProgressLine>(style, width);
  return [line](const json& op) {
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    const std::string text = line->Update(op, now_ms);
    if (text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  };
}

}  // namespace ferry::cli

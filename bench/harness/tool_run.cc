#include "bench/harness/tool_run.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bench/harness/interrupt.h"
#include "core/files.h"
#include "core/process.h"

namespace ferry::bench {

namespace {
std::string LastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}
}  // namespace

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    out += a.find_first_of(" '\"") == std::string::npos ? a : "'" + a + "'";
  }
  return out;
}

Result<std::string> RunTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                            bool even_if_interrupted) {
  char path[] = "/tmp/ferry-bench-tool-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) {
    return Status::Internal(std::string("cannot create an output file in /tmp: ") +
                            std::strerror(errno));
  }
  ::close(fd);
  auto p = Process::Spawn(argv, path);
  if (!p.ok()) {
    ::unlink(path);
    return p.status().WithContext("running " + CommandLine(argv));
  }
  auto ex = even_if_interrupted ? p->WaitExit(timeout) : WaitExitUnlessInterrupted(*p, timeout);
  if (!ex) {
    p->Signal(SIGKILL);
    p->WaitExit(std::chrono::milliseconds(5000));
    ::unlink(path);
    if (!even_if_interrupted && Interrupted()) {
      return Status::Unavailable("interrupted during " + CommandLine(argv));
    }
    return Status::DeadlineExceeded(CommandLine(argv) + " did not finish within " +
                                    std::to_string(timeout.count()) + " ms");
  }
  auto output = ReadFile(path);
  ::unlink(path);
  std::string text = output.ok() ? *output : "";
  if (!ex->known || ex->signaled || ex->code != 0) {
    std::string said = LastLine(text);
    return Status::Unavailable(CommandLine(argv) + " " + ex->Describe() +
                               (said.empty() ? "" : ": " + said));
  }
  return text;
}

}  // namespace ferry::bench

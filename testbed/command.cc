#include "testbed/command.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/files.h"
#include "core/process.h"
#include "testbed/interrupt.h"

namespace ferry::testbed {

namespace {
std::string LastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  size_t nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

// A capture that cannot be read is what a command that printed nothing leaves.
std::string ReadOrEmpty(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? *text : "";
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

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env) {
  char out_path[] = "/tmp/ferry-cmd-out-XXXXXX";
  char err_path[] = "/tmp/ferry-cmd-err-XXXXXX";
  int out_fd = ::mkstemp(out_path);
  int err_fd = ::mkstemp(err_path);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::perror("exec");
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(out_fd);
  ::close(err_fd);
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadOrEmpty(out_path);
  r.err = ReadOrEmpty(err_path);
  ::unlink(out_path);
  ::unlink(err_path);
  return r;
}

}  // namespace ferry::testbed

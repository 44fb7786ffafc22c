#include "harness/command.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include "harness/test_files.h"

namespace ferry::testing {

CommandResult RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
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
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  ::unlink(out_path);
  ::unlink(err_path);
  return r;
}

std::string ErrorText(const CommandResult& r) {
  static const std::regex kProgress(R"(.* \([0-9]{1,3}%\))");
  std::string text;
  size_t start = 0;
  while (start < r.err.size()) {
    size_t end = r.err.find('\n', start);
    if (end == std::string::npos) end = r.err.size();
    if (!std::regex_match(r.err.begin() + start, r.err.begin() + end, kProgress)) {
      text.append(r.err, start, end - start).append("\n");
    }
    start = end + 1;
  }
  return text;
}

int ErrorLines(const CommandResult& r) {
  const std::string text = ErrorText(r);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace ferry::testing

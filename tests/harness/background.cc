#include "harness/background.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "harness/ferryd_fixture.h"
#include "harness/test_files.h"

namespace ferry::testing {

Background::Background(const std::vector<std::string>& argv, const std::string& out_path,
                       int stop_signal)
    : out_(out_path), stop_signal_(stop_signal) {
  pid_ = ::fork();
  if (pid_ == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    // A test run from a shell's background job (`nohup ... &`) inherits SIGINT and SIGHUP
    // ignored, and exec keeps that: the stop signal would then never end the program.
    ::signal(stop_signal, SIG_DFL);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
}

bool Background::Running() const { return pid_ > 0 && ProcessAlive(pid_); }

void Background::Stop() { SignalAndReap(pid_, stop_signal_); }

std::string Background::Output() const { return ReadFile(out_); }

size_t Background::Lines() const {
  const std::string out = Output();
  return static_cast<size_t>(std::count(out.begin(), out.end(), '\n'));
}

}  // namespace ferry::testing

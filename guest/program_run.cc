#include "guest/program_run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ferry::guest {
namespace {

// Without a pidfd (kernels before 5.3) the child's exit is checked this often.
constexpr int kExitCheckMs = 5;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Reads what the pipe holds now into `output` (up to the cap; the rest is read and dropped, so
// the child never blocks on a full pipe). Returns false at end of file.
bool Drain(int fd, std::string& output) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      std::size_t room = kMaxProgramOutputBytes - std::min(output.size(), kMaxProgramOutputBytes);
      output.append(buf, std::min(static_cast<std::size_t>(n), room));
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

std::string DescribeStatus(int status) {
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

}  // namespace

ProgramRun RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      std::chrono::milliseconds timeout) {
  ProgramRun run;
  const std::string& program = argv.at(0);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    run.error = Errno("cannot run " + program + ": pipe");
    return run;
  }
  Fd out_read(pipe_fds[0]);
  Fd out_write(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 2);
  // Only our end is non-blocking: the child's stdout behaves as usual.
  fcntl(out_read.get(), F_SETFL, O_NONBLOCK);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);  // SIGPIPE is ignored in the agent
  // Its own session and process group, so a timeout kills what it started too (udhcpc's script).
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);

  std::vector<char*> c_argv, c_env;
  for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  for (const std::string& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, program.c_str(), &actions, &attr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  out_write.Reset();
  if (rc != 0) {
    run.error = "cannot run " + program + ": " + std::strerror(rc);
    return run;
  }

  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool output_open = true;
  int status = 0;
  bool exited = false;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd fds[2] = {{output_open ? out_read.get() : -1, POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int wait_ms = static_cast<int>(left.count());
    if (pidfd.get() < 0) wait_ms = std::min(wait_ms, kExitCheckMs);
    if (poll(fds, 2, wait_ms) < 0 && errno != EINTR) {
      run.error = Errno("waiting for " + program + ": poll");
      break;
    }
    if (output_open && fds[0].revents != 0) output_open = Drain(out_read.get(), run.output);
  }
  if (!exited) {
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (run.error.empty()) {
      run.error = program + " did not finish within " + std::to_string(timeout.count()) +
                  " ms and was killed";
    }
  }
  // What it printed just before exiting. Not waiting for end of file: a process it left behind
  // may hold the pipe open.
  if (output_open) Drain(out_read.get(), run.output);
  if (exited) {
    if (WIFEXITED(status)) {
      run.exit_code = WEXITSTATUS(status);
    } else {
      run.error = program + " " + DescribeStatus(status);
    }
  }
  return run;
}

}  // namespace ferry::guest

#include "core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ferry {

namespace {
int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
}  // namespace

std::string ProcessExit::Describe() const {
  if (!known) return "exited (status unknown: it was started by an earlier ferryd)";
  if (signaled) {
    return "was killed by signal " + std::to_string(code) + " (" + ::strsignal(code) + ")";
  }
  return "exited with code " + std::to_string(code);
}

Result<uint64_t> ProcessStartTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) {
    return Status::NotFound("process " + std::to_string(pid) + " does not exist");
  }
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return Status::Internal("unparsable /proc/PID/stat");
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return Status::Internal("short /proc/PID/stat");
  }
  return std::stoull(field);
}

Result<Process> Process::Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return Status::InvalidArgument("empty command line");
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return Status::Internal("cannot open " + log_path + ": " + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  // A pipe with O_CLOEXEC reports exec failure (errno) to the parent.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    ::close(log_fd);
    return Status::Internal(std::string("pipe2: ") + std::strerror(errno));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    ::close(report[0]);
    ::close(report[1]);
    return Status::ResourceExhausted(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // Signal masks and ignored signals survive exec: give the child a clean slate, or a QEMU
    // started by a ferryd that blocks SIGTERM could never be terminated.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
    ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::dup2(report[1], 3);
    ::fcntl(3, F_SETFD, FD_CLOEXEC);
    ::closefrom(4);
    ::execvp(args[0], args.data());
    int err = errno;
    (void)!::write(3, &err, sizeof err);
    ::_exit(127);
  }
  ::close(report[1]);
  ::close(log_fd);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = ::read(report[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  if (got == sizeof exec_errno) {
    ::waitpid(pid, nullptr, 0);
    return Status::NotFound("cannot run " + argv[0] + ": " + std::strerror(exec_errno));
  }

  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return Status::Internal(std::string("pidfd_open: ") + std::strerror(err));
  }
  auto start = ProcessStartTime(pid);
  return Process(pid, pidfd, start.ok() ? *start : 0, true);
}

Result<Process> Process::Adopt(pid_t pid, uint64_t start_time) {
  auto start = ProcessStartTime(pid);
  if (!start.ok() || *start != start_time) {
    return Status::NotFound("process " + std::to_string(pid) + " is gone");
  }
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) return Status::NotFound("process " + std::to_string(pid) + " is gone");
  // Checked again after opening the pidfd: the pid cannot be reused while we hold it.
  start = ProcessStartTime(pid);
  if (!start.ok() || *start != start_time) {
    ::close(pidfd);
    return Status::NotFound("process " + std::to_string(pid) + " is gone");
  }
  return Process(pid, pidfd, start_time, /*is_child=*/false);
}

Process::Process(Process&& o) noexcept
    : pid_(o.pid_), pidfd_(o.pidfd_), start_time_(o.start_time_), is_child_(o.is_child_),
      exit_(o.exit_) {
  o.pidfd_ = -1;
  o.pid_ = -1;
}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    if (pidfd_ >= 0) ::close(pidfd_);
    pid_ = o.pid_;
    pidfd_ = o.pidfd_;
    start_time_ = o.start_time_;
    is_child_ = o.is_child_;
    exit_ = o.exit_;
    o.pidfd_ = -1;
    o.pid_ = -1;
  }
  return *this;
}

Process::~Process() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

bool Process::Running() const {
  if (exit_ || pidfd_ < 0) return false;
  struct pollfd p = {pidfd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

std::optional<ProcessExit> Process::WaitExit(std::chrono::milliseconds timeout) {
  if (exit_) return exit_;
  if (pidfd_ < 0) return ProcessExit{};
  struct pollfd p = {pidfd_, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  ProcessExit ex;
  if (is_child_) {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_), &info, WEXITED) == 0) {
      ex.known = true;
      ex.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
      ex.code = info.si_status;
    }
  }
  exit_ = ex;
  return exit_;
}

void Process::Signal(int sig) const {
  if (pidfd_ >= 0 && !exit_) ::syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0);
}

}  // namespace ferry

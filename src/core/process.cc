#include "core/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

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

std::string OpenFileUnder(pid_t pid, const std::string& dir) {
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* fds = ::opendir(fd_dir.c_str());
  if (fds == nullptr) return "";
  std::string found;
  char target[PATH_MAX];
  while (dirent* e = ::readdir(fds)) {
    if (e->d_name[0] == '.') continue;
    const ssize_t n = ::readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    std::string file(target, static_cast<size_t>(n));
    if (file == dir || file.rfind(dir + "/", 0) == 0) {
      found = std::move(file);
      break;
    }
  }
  ::closedir(fds);
  return found;
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

Result<Process> Process::Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                               const std::vector<std::string>& extra_env) {
  SpawnOptions options;
  options.extra_env = extra_env;
  return Spawn(argv, log_path, options);
}

namespace {

// Closes what it holds: the copies of inherited descriptors made for one spawn.
struct FdCopies {
  std::vector<int> fds;
  ~FdCopies() {
    for (int fd : fds) ::close(fd);
  }
};

// `name` as execve needs it: itself if it names a path, else the first executable file of that
// name in $PATH. Found in the parent: the child runs nothing that may allocate.
Result<std::string> FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = ::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return Status::NotFound("cannot run " + name + ": not found in PATH");
}

// Everything the child does between vfork and execve, with raw system calls only: it shares
// ferryd's memory (so it must not allocate or take a lock), and glibc's setresuid and friends
// would signal ferryd's other threads to change their credentials too. Returns only on failure,
// with the errno to report.
struct ChildPlan {
  const char* program;
  char* const* argv;
  char* const* envp;
  int log_fd;
  const std::vector<int>* inherit;  // already above every target number
  int close_from;
  const Credentials* run_as;  // null: keep ours
};

int RunChild(const ChildPlan& plan) {
  // A clean slate: signal dispositions ferryd ignores and its blocked mask survive exec, so a
  // QEMU started by a ferryd that ignores SIGPIPE or blocks SIGTERM could otherwise never be
  // told to stop.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
  if (::syscall(SYS_setsid) < 0) return errno;
  // Wherever it lands below `close_from`, a target descriptor replaces it.
  const int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0 || ::dup2(null_fd, 0) < 0) return errno;
  if (::dup2(plan.log_fd, 1) < 0 || ::dup2(plan.log_fd, 2) < 0) return errno;
  for (size_t i = 0; i < plan.inherit->size(); ++i) {
    if (::dup2((*plan.inherit)[i], InheritedFd(i)) < 0) return errno;
  }
  if (::syscall(SYS_close_range, plan.close_from, ~0U, 0) < 0) return errno;
  if (plan.run_as != nullptr) {
    const Credentials& who = *plan.run_as;
    // Groups first, while still root; then the gid, then the uid, which drops every capability.
    if (::syscall(SYS_setgroups, who.groups.size(), who.groups.data()) < 0) return errno;
    if (::syscall(SYS_setresgid, who.gid, who.gid, who.gid) < 0) return errno;
    if (::syscall(SYS_setresuid, who.uid, who.uid, who.uid) < 0) return errno;
    // No execve may give it back (no setuid binary, no file capabilities).
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return errno;
    if (::chdir("/") < 0) return errno;  // ferryd's directory may be closed to this user
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.program, plan.argv, plan.envp);
  return errno;
}

}  // namespace

Result<Process> Process::Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                               const SpawnOptions& options) {
  if (argv.empty()) return Status::InvalidArgument("empty command line");
  FERRY_ASSIGN_OR_RETURN(std::string program, FindProgram(argv[0]));
  const std::vector<std::string>& extra_env = options.extra_env;
  // Each inherited descriptor is first copied above the numbers the child gives them, so that
  // placing one (dup2 to 3+i) can never overwrite another not yet placed.
  FdCopies copies;
  const int above = InheritedFd(options.inherit.size());
  for (int fd : options.inherit) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, above);
    if (copy < 0) {
      return Status::Internal("cannot pass descriptor " + std::to_string(fd) + " to " + argv[0] +
                              ": " + std::strerror(errno));
    }
    copies.fds.push_back(copy);
  }
  // The log too lies above the targets, so placing them cannot close it.
  const int opened = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (opened < 0) return Status::Internal("cannot open " + log_path + ": " + std::strerror(errno));
  const int log_fd = ::fcntl(opened, F_DUPFD_CLOEXEC, above);
  ::close(opened);
  if (log_fd < 0) return Status::Internal("cannot open " + log_path + ": " + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The caller's environment, with extra_env's NAME=VALUE entries replacing or adding to it.
  std::vector<char*> env;
  for (const auto& e : extra_env) env.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    bool replaced = false;
    for (const auto& x : extra_env) {
      const std::string_view name = std::string_view(x).substr(0, x.find('=') + 1);
      if (entry.substr(0, name.size()) == name) replaced = true;
    }
    if (!replaced) env.push_back(*e);
  }
  env.push_back(nullptr);

  // vfork, not fork: the child copies no page tables, so a large multithreaded ferryd neither
  // pays to copy its mappings nor takes copy-on-write faults afterwards (costly under nested
  // virtualisation), and ferryd's thread waits only until the child has exec'd. The child
  // switches user itself (RunChild) rather than through a helper program: one exec, not two.
  const ChildPlan plan{program.c_str(),
                       args.data(),
                       env.data(),
                       log_fd,
                       &copies.fds,
                       above,
                       options.run_as ? &*options.run_as : nullptr};
  // Signals stay blocked across vfork: a handler of ferryd's must never run in the child.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  volatile int child_error = 0;  // written by the child (shared memory) when it cannot exec
  const pid_t pid = ::vfork();
  if (pid == 0) {
    child_error = RunChild(plan);
    ::_exit(127);
  }
  const int vfork_error = errno;  // before the calls below may change it
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  ::close(log_fd);
  if (pid < 0) {
    return Status::ResourceExhausted("cannot start " + argv[0] + ": " + std::strerror(vfork_error));
  }
  if (child_error != 0) {
    ::waitpid(pid, nullptr, 0);
    const int err = child_error;
    if (err == ENOENT || err == EACCES || err == ENOEXEC) {
      return Status::NotFound("cannot run " + argv[0] + ": " + std::strerror(err));
    }
    return Status::Internal("cannot start " + argv[0] + ": " + std::strerror(err));
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
    : pid_(o.pid_),
      pidfd_(o.pidfd_),
      start_time_(o.start_time_),
      is_child_(o.is_child_),
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

#include "core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

// setpriv's arguments that make the process `who` before it runs the program.
std::vector<std::string> RunAsPrefix(const Credentials& who) {
  std::string groups;
  for (gid_t g : who.groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
  return {"setpriv",
          "--reuid=" + std::to_string(who.uid),
          "--regid=" + std::to_string(who.gid),
          groups.empty() ? "--clear-groups" : "--groups=" + groups,
          "--inh-caps=-all",
          "--bounding-set=-all",
          "--no-new-privs",
          "--"};
}

// Closes what it holds: the copies of inherited descriptors made for one spawn.
struct FdCopies {
  std::vector<int> fds;
  ~FdCopies() {
    for (int fd : fds) ::close(fd);
  }
};

}  // namespace

Result<Process> Process::Spawn(const std::vector<std::string>& program,
                               const std::string& log_path, const SpawnOptions& options) {
  if (program.empty()) return Status::InvalidArgument("empty command line");
  std::vector<std::string> argv = program;
  if (options.run_as) {
    std::vector<std::string> prefix = RunAsPrefix(*options.run_as);
    argv.insert(argv.begin(), prefix.begin(), prefix.end());
  }
  const std::vector<std::string>& extra_env = options.extra_env;
  // Each inherited descriptor is first copied above the numbers the child gives them, so that
  // placing one (dup2 to 3+i) can never overwrite another not yet placed.
  FdCopies copies;
  const int above = InheritedFd(options.inherit.size());
  for (int fd : options.inherit) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, above);
    if (copy < 0) {
      return Status::Internal("cannot pass descriptor " + std::to_string(fd) + " to " +
                              program[0] + ": " + std::strerror(errno));
    }
    copies.fds.push_back(copy);
  }
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
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

  // posix_spawn, not fork: glibc's is a vfork-style clone that copies no page tables, so a
  // large multithreaded ferryd neither pays to copy its mappings nor takes copy-on-write faults
  // afterwards (costly under nested virtualisation). The child gets a clean slate: signal
  // masks and ignored signals survive exec, so a QEMU started by a ferryd that blocks SIGTERM
  // could otherwise never be terminated; a new session; stdin from /dev/null, stdout and stderr
  // to the log, the inherited descriptors at 3, 4, ..., nothing else.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, log_fd, 2);
  for (size_t i = 0; i < copies.fds.size(); ++i) {
    posix_spawn_file_actions_adddup2(&actions, copies.fds[i], InheritedFd(i));
  }
  posix_spawn_file_actions_addclosefrom_np(&actions, above);
  // A process of another user may not be able to enter ferryd's working directory.
  if (options.run_as) posix_spawn_file_actions_addchdir_np(&actions, "/");
  pid_t pid = 0;
  const int err = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(log_fd);
  if (err == ENOENT || err == EACCES || err == ENOEXEC) {
    return Status::NotFound("cannot run " + argv[0] + ": " + std::strerror(err));
  }
  if (err != 0) {
    return Status::ResourceExhausted("posix_spawn " + argv[0] + ": " + std::strerror(err));
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

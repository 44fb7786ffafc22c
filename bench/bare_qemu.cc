#include "bench/bare_qemu.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "bench/interrupt.h"
#include "core/files.h"

namespace ferry::bench {

using std::chrono::milliseconds;

namespace {
constexpr size_t kLastWordsBytes = 400;

std::string OneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

Status CreateFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("cannot create " + path + ": " + std::strerror(errno));
  Status st;
  if (size > 0 && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    st = Status::ResourceExhausted("cannot size " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  return st;
}
}  // namespace

Result<std::unique_ptr<BareQemu>> BareQemu::Launch(const qemu::LaunchSpec& spec,
                                                   const std::string& qemu_log,
                                                   const BareQemuOptions& options) {
  std::unique_ptr<BareQemu> q(new BareQemu(spec, qemu_log));
  FERRY_RETURN_IF_ERROR(CreateFile(spec.ram_path, spec.memory_mib << 20));
  FERRY_RETURN_IF_ERROR(CreateFile(spec.console_log, 0));
  // Watched before QEMU starts, so no write can be missed. QEMU opens the log with O_TRUNC,
  // which keeps the inode and so the watch.
  q->inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (q->inotify_fd_ < 0 ||
      ::inotify_add_watch(q->inotify_fd_, spec.console_log.c_str(), IN_MODIFY) < 0) {
    return Status::Internal("cannot watch " + spec.console_log + ": " + std::strerror(errno));
  }
  q->console_fd_ = ::open(spec.console_log.c_str(), O_RDONLY | O_CLOEXEC);
  if (q->console_fd_ < 0) {
    return Status::Internal("cannot open " + spec.console_log + ": " + std::strerror(errno));
  }

  std::vector<std::string> argv;
  if (!options.netns.empty()) argv = {"ip", "netns", "exec", options.netns};  // execs in place
  for (std::string& arg : qemu::BuildCommandLine(spec)) argv.push_back(std::move(arg));
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  q->spawned_at_ = Clock::now();
  // The same environment as ferryd gives its QEMUs: the comparison differs only in what ferry
  // does, not in how QEMU starts.
  auto p = Process::Spawn(argv, qemu_log, qemu::QemuEnvironment());
  if (!p.ok()) return p.status().WithContext("starting " + spec.qemu_binary);
  q->process_ = std::move(p).value();
  return q;
}

BareQemu::~BareQemu() {
  qmp_.reset();  // before QEMU goes, so the client never waits on a dead socket
  if (process_) {
    process_->Signal(SIGKILL);
    process_->WaitExit(milliseconds(10000));
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (console_fd_ >= 0) ::close(console_fd_);
  ::unlink(spec_.ram_path.c_str());
}

bool BareQemu::ConsoleHas(const std::string& marker) {
  // Searched from the start: the console is small, and a marker may straddle two reads or have
  // come in the same read as an earlier marker the caller waited for.
  const size_t from = 0;
  char buf[4096];
  ssize_t n;
  while ((n = ::pread(console_fd_, buf, sizeof buf, static_cast<off_t>(console_.size()))) > 0) {
    console_.append(buf, static_cast<size_t>(n));
  }
  return console_.find(marker, from) != std::string::npos;
}

std::string BareQemu::DescribeEarlyExit(const ProcessExit& exit) const {
  std::string said = OneLine(TailFile(qemu_log_, kLastWordsBytes));
  std::string console = OneLine(TailFile(spec_.console_log, kLastWordsBytes));
  return "QEMU " + exit.Describe() + " before the guest was ready" +
         (said.empty() ? "" : "; QEMU said: " + said) +
         (console.empty() ? "" : "; console ends: " + console);
}

Result<BareQemu::Clock::time_point> BareQemu::WaitForConsole(const std::string& marker,
                                                             milliseconds timeout) {
  const auto deadline = spawned_at_ + timeout;
  while (true) {
    if (ConsoleHas(marker)) return Clock::now();
    if (auto ex = process_->WaitExit(milliseconds(0))) {
      if (ConsoleHas(marker)) return Clock::now();
      return Status::Unavailable(DescribeEarlyExit(*ex));
    }
    if (Interrupted()) return Status::Unavailable("interrupted");
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          "the guest did not print '" + marker + "' within " +
          std::to_string(timeout.count() / 1000) +
          " s; console ends: " + OneLine(TailFile(spec_.console_log, kLastWordsBytes)));
    }
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {process_->pidfd(), POLLIN, 0}};
    int r = ::poll(fds, 2, static_cast<int>(kInterruptCheck.count()));
    if (r > 0 && (fds[0].revents & POLLIN)) {
      char events[4096];
      while (::read(inotify_fd_, events, sizeof events) > 0) {
      }
    }
  }
}

Result<qemu::QmpClient*> BareQemu::Qmp(milliseconds timeout) {
  if (qmp_) return qmp_.get();
  const auto deadline = Clock::now() + timeout;
  Status last = Status::Unavailable("QMP socket " + spec_.qmp_socket + " never appeared");
  while (Clock::now() < deadline) {
    if (auto ex = process_->WaitExit(milliseconds(0))) {
      return Status::Unavailable("QEMU " + ex->Describe() +
                                 " before its monitor answered; QEMU said: " +
                                 OneLine(TailFile(qemu_log_, kLastWordsBytes)));
    }
    if (Interrupted()) return Status::Unavailable("interrupted");
    if (PathExists(spec_.qmp_socket)) {
      auto client = qemu::QmpClient::Connect(spec_.qmp_socket, milliseconds(2000));
      if (client.ok()) {
        qmp_ = std::move(client).value();
        return qmp_.get();
      }
      last = client.status();
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return Status::DeadlineExceeded("QEMU's monitor did not answer within " +
                                  std::to_string(timeout.count()) + " ms: " + last.message());
}

Status BareQemu::AwaitMigration(milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(qemu::QmpClient * qmp, Qmp(timeout));
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Interrupted()) return Status::Unavailable("interrupted");
    auto info = qmp->Execute("query-migrate");
    if (!info.ok()) return info.status().WithContext("query-migrate");
    const std::string status = info->value("status", "");
    if (status == "completed") return Status::Ok();
    if (status == "failed" || status == "cancelled") {
      return Status::Unavailable("the migration failed in QEMU: " +
                                 info->value("error-desc", std::string("no reason given")));
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  return Status::DeadlineExceeded("the migration did not finish within " +
                                  std::to_string(timeout.count()) + " ms");
}

}  // namespace ferry::bench

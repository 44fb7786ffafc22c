#include "bench/baselines/bare_qemu.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "bench/harness/testbed.h"
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

}  // namespace

Result<std::unique_ptr<BareQemu>> BareQemu::Launch(const BareLaunch& launch,
                                                   const std::string& qemu_log,
                                                   const BareQemuOptions& options) {
  std::unique_ptr<BareQemu> q(new BareQemu(launch, qemu_log));
  FERRY_ASSIGN_OR_RETURN(BareLaunch::Opened opened, launch.Open(options.netns));
  // The console log exists now (OpenQemuFiles created it) and QEMU only appends to it: watched
  // before QEMU starts, so no write can be missed.
  const std::string& console_log = launch.files.console_log;
  q->inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (q->inotify_fd_ < 0 ||
      ::inotify_add_watch(q->inotify_fd_, console_log.c_str(), IN_MODIFY) < 0) {
    return Status::Internal("cannot watch " + console_log + ": " + std::strerror(errno));
  }
  q->console_fd_ = ::open(console_log.c_str(), O_RDONLY | O_CLOEXEC);
  if (q->console_fd_ < 0) {
    return Status::Internal("cannot open " + console_log + ": " + std::strerror(errno));
  }

  std::vector<std::string> argv;
  if (!options.netns.empty()) argv = {"ip", "netns", "exec", options.netns};  // execs in place
  for (std::string& arg : opened.argv) argv.push_back(std::move(arg));
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  // The same environment as ferryd gives its QEMUs, and its files the same way: the comparison
  // differs only in what ferry does, not in how QEMU starts. No run_as: plain QEMU runs as
  // root.
  SpawnOptions spawn;
  spawn.extra_env = qemu::QemuEnvironment();
  for (const UniqueFd& fd : opened.start.fds) spawn.inherit.push_back(fd.get());
  q->spawned_at_ = Clock::now();
  auto p = Process::Spawn(argv, qemu_log, spawn);
  // QEMU holds its own copies now (or never will): ours close, so that a QEMU that dies leaves
  // no listening socket behind for Qmp() to connect to.
  opened.start.fds.clear();
  if (!p.ok()) return p.status().WithContext("starting " + launch.spec.qemu_binary);
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
  if (!launch_.ram_path.empty()) ::unlink(launch_.ram_path.c_str());
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
  std::string console = OneLine(TailFile(launch_.files.console_log, kLastWordsBytes));
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
          " s; console ends: " + OneLine(TailFile(launch_.files.console_log, kLastWordsBytes)));
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
  const std::string& socket = launch_.files.qmp_socket;
  Status last = Status::Unavailable("nothing answered on " + socket);
  while (Clock::now() < deadline) {
    if (auto ex = process_->WaitExit(milliseconds(0))) {
      return Status::Unavailable("QEMU " + ex->Describe() +
                                 " before its monitor answered; QEMU said: " +
                                 OneLine(TailFile(qemu_log_, kLastWordsBytes)));
    }
    if (Interrupted()) return Status::Unavailable("interrupted");
    auto client = qemu::QmpClient::Connect(socket, milliseconds(2000));
    if (client.ok()) {
      qmp_ = std::move(client).value();
      return qmp_.get();
    }
    last = client.status();
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

Status MakeBareQemuDirs(std::optional<ScratchDir>& dir, std::optional<ScratchDir>& ram_dir,
                        const std::string& prefix) {
  FERRY_ASSIGN_OR_RETURN(ScratchDir made, ScratchDir::Create("/tmp", prefix));
  FERRY_ASSIGN_OR_RETURN(ScratchDir ram, ScratchDir::Create("/dev/shm", prefix));
  dir = std::move(made);
  ram_dir = std::move(ram);
  return Status::Ok();
}

}  // namespace ferry::bench

#include "vm/vm_runtime.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <future>
#include <optional>
#include <utility>

#include "core/fault_point.h"
#include "core/files.h"
#include "core/guarded_thread.h"
#include "qemu/guest_messages.h"
#include "qemu/launch_spec.h"
#include "vm/console_ring.h"
#include "vm/ready_ping.h"

namespace ferry::vm {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {
// How much of QEMU's log an error carries.
constexpr size_t kLastWordsBytes = 1024;
// How often ferryd asks a booting guest whether it is ready, in case its ready event was missed
// (e.g. ferryd restarted while the guest booted).
constexpr milliseconds kReadyPollInterval(500);
constexpr milliseconds kReconnectInterval(50);
constexpr milliseconds kGuestConnectTry(100);
// How often the console's size is checked: the ring holds at most twice its cap plus what the
// guest prints in this time.
constexpr milliseconds kConsoleCheckInterval(1000);
std::atomic<uint64_t> console_ring_bytes{uint64_t{2} << 20};
}  // namespace

void SetConsoleRingBytes(uint64_t bytes) { console_ring_bytes = bytes; }

std::string QemuLastWords(const VmPaths& paths) {
  std::string words = TailFile(paths.qemu_log, kLastWordsBytes);
  while (!words.empty() && (words.back() == '\n' || words.back() == ' ' || words.back() == '\r')) {
    words.pop_back();
  }
  return words;
}

VmRuntime::VmRuntime(Process process, VmPaths paths, Callbacks callbacks)
    : process_(std::move(process)), paths_(std::move(paths)), callbacks_(std::move(callbacks)) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
}

Result<std::unique_ptr<VmRuntime>> VmRuntime::Launch(const std::vector<std::string>& argv,
                                                     QemuStart start, const VmPaths& paths,
                                                     Callbacks callbacks, milliseconds timeout,
                                                     const SpawnedHandler& on_spawned) {
  SpawnOptions options;
  options.extra_env = qemu::QemuEnvironment();
  for (const UniqueFd& fd : start.fds) options.inherit.push_back(fd.get());
  if (start.uid.held()) {
    options.run_as = Credentials{start.uid.uid(), start.uid.gid(), start.groups};
  }
  auto spawned = Process::Spawn(argv, paths.qemu_log, options);
  // QEMU holds its own copies now (or never will): ferryd's close here, so that a QEMU that dies
  // leaves no listening socket behind for QMP to connect to.
  start.fds.clear();
  FERRY_ASSIGN_OR_RETURN(Process process, std::move(spawned));
  FaultPoint("vm.launch.before_record");
  if (on_spawned) on_spawned(process.pid(), process.start_time());
  FaultPoint("vm.launch.after_spawn");
  std::unique_ptr<VmRuntime> rt(new VmRuntime(std::move(process), paths, std::move(callbacks)));
  rt->uid_ = std::move(start.uid);
  Status st = rt->ConnectQmp(timeout);
  if (!st.ok()) {
    rt->process_.Signal(SIGKILL);
    auto ex = rt->process_.WaitExit(std::chrono::seconds(5));
    std::string words = QemuLastWords(paths);
    std::string how = ex ? "QEMU " + ex->Describe() : st.message();
    return Status::Unavailable("QEMU did not start: " + how +
                               (words.empty() ? "" : "; QEMU said: " + words));
  }
  Status started = rt->StartThreads();
  if (!started.ok()) {
    rt->process_.Signal(SIGKILL);
    return started;
  }
  return rt;
}

Result<std::unique_ptr<VmRuntime>> VmRuntime::Attach(pid_t pid, uint64_t start_time,
                                                     QemuUidLease uid, const VmPaths& paths,
                                                     Callbacks callbacks) {
  FERRY_ASSIGN_OR_RETURN(Process process, Process::Adopt(pid, start_time));
  std::unique_ptr<VmRuntime> rt(new VmRuntime(std::move(process), paths, std::move(callbacks)));
  rt->uid_ = std::move(uid);
  FERRY_RETURN_IF_ERROR(rt->ConnectQmp(std::chrono::seconds(5)));
  FERRY_RETURN_IF_ERROR(rt->StartThreads());
  return rt;
}

Status VmRuntime::ConnectQmp(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Status last = Status::Unavailable("QMP socket " + paths_.qmp_socket + " never appeared");
  while (Clock::now() < deadline) {
    if (!process_.Running()) return Status::Unavailable("QEMU exited during start-up");
    if (PathExists(paths_.qmp_socket)) {
      auto client = qemu::QmpClient::Connect(paths_.qmp_socket, std::chrono::seconds(2));
      if (client.ok()) {
        std::shared_ptr<qemu::QmpClient> qmp = std::move(client).value();
        qmp->SetEventHandler([this](const qemu::QmpEvent& ev) {
          auto cb = CurrentCallbacks();
          if (cb.on_qmp_event) cb.on_qmp_event(ev);
        });
        std::lock_guard<std::mutex> lock(mu_);
        qmp_ = std::move(qmp);
        return Status::Ok();
      }
      last = client.status();
    }
    // QEMU answers within ~100 ms; a coarser poll would add half its period to every clone.
    std::this_thread::sleep_for(milliseconds(2));
  }
  return Status::DeadlineExceeded("QMP did not answer within " + std::to_string(timeout.count()) +
                                  " ms: " + last.message());
}

Status VmRuntime::StartThreads() {
  // A watcher that fails stops alone; the runtime's owner sees the VM's guest never become
  // ready (guest watcher) or, for the process watcher, the error in the log naming the QEMU.
  const std::string who = "QEMU " + std::to_string(process_.pid()) + " (" + paths_.qmp_socket + ")";
  FERRY_ASSIGN_OR_RETURN(process_thread_,
                         StartGuardedThread(who + " process watcher", [this] { WatchProcess(); }));
  FERRY_ASSIGN_OR_RETURN(guest_thread_,
                         StartGuardedThread(who + " guest watcher", [this] { WatchGuest(); }));
  return Status::Ok();
}

VmRuntime::~VmRuntime() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  uint64_t one = 1;
  if (stop_fd_ >= 0) (void)!::write(stop_fd_, &one, sizeof one);
  if (process_thread_.joinable()) process_thread_.join();
  if (guest_thread_.joinable()) guest_thread_.join();
  // Channels close before the process handle goes away.
  guest_.reset();
  qmp_.reset();
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void VmRuntime::WatchProcess() {
  struct pollfd fds[2] = {{process_.pidfd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (true) {
    int r = ::poll(fds, 2, static_cast<int>(kConsoleCheckInterval.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      auto rotated = RotateConsoleIfOver(paths_.console_log, console_ring_bytes);
      if (!rotated.ok()) spdlog::warn("console of {}: {}", paths_.dir, rotated.status().message());
      continue;
    }
    if (fds[1].revents) return;  // runtime destroyed while QEMU still runs
    if (fds[0].revents) break;
  }
  auto ex = process_.WaitExit(milliseconds(0));
  ProcessExit exit = ex.value_or(ProcessExit{});
  {
    std::lock_guard<std::mutex> lock(mu_);
    exit_ = exit;
  }
  cv_.notify_all();
  auto cb = CurrentCallbacks();
  if (cb.on_exit) cb.on_exit(exit);
}

VmRuntime::Callbacks VmRuntime::CurrentCallbacks() {
  std::lock_guard<std::mutex> lock(callbacks_mu_);
  return callbacks_;
}

void VmRuntime::SetCallbacks(Callbacks callbacks) {
  {
    std::lock_guard<std::mutex> lock(callbacks_mu_);
    callbacks_ = std::move(callbacks);
  }
  std::optional<ProcessExit> exit;
  {
    std::lock_guard<std::mutex> lock(mu_);
    exit = exit_;
  }
  auto cb = CurrentCallbacks();
  if (exit && cb.on_exit) cb.on_exit(*exit);
}

void VmRuntime::GuestReady() {
  if (guest_ready_.exchange(true)) return;
  auto cb = CurrentCallbacks();
  if (cb.on_guest_ready) cb.on_guest_ready();
}

void VmRuntime::WatchGuest() {
  bool bad_ping_logged = false;
  // The ready ping on the wire, if any (ready_ping.h: one at a time, only while the guest runs).
  std::optional<JsonLineConnection::PendingReply> ping;
  Clock::time_point ping_sent;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && !exit_) {
    if (!guest_) {
      ping.reset();  // it went with the old connection
      lock.unlock();
      // A short try: this thread must notice soon when the runtime ends (a destructor joins
      // it), and a QEMU that is gone leaves a socket that refuses until the timeout.
      auto ch = qemu::GuestChannel::Connect(paths_.guest_socket, kGuestConnectTry);
      lock.lock();
      if (!ch.ok()) {
        cv_.wait_for(lock, kReconnectInterval, [this] { return stopping_ || exit_.has_value(); });
        continue;
      }
      std::shared_ptr<qemu::GuestChannel> channel = std::move(ch).value();
      channel->SetEventHandler([this](const qemu::GuestEvent& ev) {
        if (ev.name == guest::events::kReady) GuestReady();
      });
      channel->SetCloseHandler([this](const Status&) { cv_.notify_all(); });
      guest_ = channel;
      cv_.notify_all();
    }
    std::shared_ptr<qemu::GuestChannel> channel = guest_;
    if (!channel->connected()) {
      guest_.reset();  // QEMU dropped the connection; connect again
      continue;
    }
    if (!guest_ready_) {
      lock.unlock();
      const auto unanswered = std::chrono::duration_cast<milliseconds>(Clock::now() - ping_sent);
      auto guest_runs = [this] {
        // Bounded as a ping was: a QEMU slow to answer must not hold this thread, which a
        // runtime's end joins.
        auto status = qemu::QueryStatus(*this, kReadyPollInterval);
        return status.ok() && status->running;
      };
      if (NextReadyPing(ping.has_value(), unanswered, guest_runs) == ReadyPingStep::kSend) {
        if (ping) channel->Forget(std::move(*ping));
        ping = channel->Start(guest::ops::kPing);
        ping_sent = Clock::now();
      }
      bool answered =
          ping && ping->future.wait_for(kReadyPollInterval) == std::future_status::ready;
      if (answered) {
        auto pong = ping->future.get();
        ping.reset();
        // A reply of the wrong shape fails this poll only: the guest is not ready until it
        // answers properly. Logged once per connection, as the guest could repeat it forever.
        auto parsed =
            pong.ok() ? qemu::ParsePingReply(*pong) : Result<qemu::GuestPing>(pong.status());
        if (parsed.ok() && parsed->ready) GuestReady();
        if (pong.ok() && !parsed.ok() && !std::exchange(bad_ping_logged, true)) {
          spdlog::warn("guest channel {}: {}; waiting for a proper answer", paths_.guest_socket,
                       parsed.status().message());
        }
      }
      lock.lock();
      // Answered but not ready (or nothing on the wire): the next ping after a pause.
      if (!guest_ready_ && !ping) {
        cv_.wait_for(lock, kReadyPollInterval, [this] { return stopping_ || exit_.has_value(); });
      }
      continue;
    }
    if (ping) channel->Forget(std::move(*ping));
    ping.reset();
    cv_.wait(lock, [&] { return stopping_ || exit_.has_value() || !channel->connected(); });
  }
}

Result<nlohmann::json> VmRuntime::Qmp(const std::string& command, const nlohmann::json& args,
                                      milliseconds timeout) {
  std::shared_ptr<qemu::QmpClient> qmp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qmp = qmp_;
  }
  if (!qmp || !qmp->connected()) return Status::Unavailable("QMP is not connected");
  return qmp->Execute(command, args, timeout);
}

Status VmRuntime::QmpPassFd(const std::string& name, int fd) {
  std::shared_ptr<qemu::QmpClient> qmp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qmp = qmp_;
  }
  if (!qmp || !qmp->connected()) return Status::Unavailable("QMP is not connected");
  return qmp->PassFd(name, fd);
}

Result<qemu::QmpClient::EventWaiter> VmRuntime::WatchQmpEvent(const std::string& name) {
  std::shared_ptr<qemu::QmpClient> qmp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qmp = qmp_;
  }
  if (!qmp || !qmp->connected()) return Status::Unavailable("QMP is not connected");
  return qmp->WatchEvent(name);
}

Result<qemu::QmpClient::AddedFd> VmRuntime::QmpAddFd(int fd, std::optional<int64_t> fdset) {
  std::shared_ptr<qemu::QmpClient> qmp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    qmp = qmp_;
  }
  if (!qmp || !qmp->connected()) return Status::Unavailable("QMP is not connected");
  return qmp->AddFd(fd, fdset);
}

Result<nlohmann::json> VmRuntime::GuestCall(std::string_view op, const nlohmann::json& args,
                                            milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(GuestRequest request, GuestStart(op, args));
  return GuestWait(std::move(request), timeout);
}

Result<VmRuntime::GuestRequest> VmRuntime::GuestStart(std::string_view op,
                                                      const nlohmann::json& args) {
  std::shared_ptr<qemu::GuestChannel> guest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    guest = guest_;
  }
  if (!guest || !guest->connected()) {
    return Status::Unavailable("the guest agent (ferry-guest) is not connected");
  }
  auto pending = guest->Start(op, args);
  return GuestRequest{std::move(guest), std::move(pending)};
}

Result<nlohmann::json> VmRuntime::GuestWait(GuestRequest request, milliseconds timeout) {
  return request.channel->Wait(std::move(request.pending), timeout);
}

Status VmRuntime::WaitGuestConnected(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  bool done = cv_.wait_for(lock, timeout, [this] {
    return stopping_ || exit_.has_value() || (guest_ && guest_->connected());
  });
  if (exit_) return Status::Unavailable("QEMU " + exit_->Describe());
  if (!done || !guest_) {
    return Status::DeadlineExceeded("the guest channel did not connect within " +
                                    std::to_string(timeout.count()) + " ms");
  }
  return Status::Ok();
}

std::optional<ProcessExit> VmRuntime::WaitExit(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return exit_.has_value(); });
  return exit_;
}

bool VmRuntime::Exited() {
  std::lock_guard<std::mutex> lock(mu_);
  return exit_.has_value();
}

void VmRuntime::Kill() { process_.Signal(SIGKILL); }

}  // namespace ferry::vm

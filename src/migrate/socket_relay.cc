#include "migrate/socket_relay.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fault_point.h"
#include "core/guarded_thread.h"
#include "core/thread_priority.h"

namespace ferry::migrate {
namespace {

// A pipe of this size lets one splice move a whole burst of NBD requests (QEMU's mirror keeps
// up to 16 MiB in flight in requests of up to 1 MiB).
constexpr int kPipeBytes = 1 << 20;
constexpr size_t kSpliceBytes = 1 << 20;
// Above the memory stream's pump (kDataPathNice): at the switchover the guest is stopped until
// two NBD flushes have made their round trips, while the pump still carries megabytes of the
// stream at the same time; at the pump's priority a request waited up to 5 ms for this thread
// (ferryd's timestamps beside QEMU's trace events, issue 13).
constexpr int kRelayNice = ThreadPriorityBoost::kDataPathNice - 5;

Status Errno(const std::string& what) {
  return Status::Unavailable(what + ": " + std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<SocketRelay>> SocketRelay::Start(UniqueFd remote, UniqueFd local,
                                                        std::string what,
                                                        std::shared_ptr<NbdTurn> turn) {
  std::unique_ptr<SocketRelay> relay(
      new SocketRelay(std::move(remote), std::move(local), std::move(what), std::move(turn)));
  SocketRelay* r = relay.get();
  // A direction that throws fails the relay (both directions end), never ferryd.
  auto on_failure = [r](const Status& why) { r->Fail(why); };
  const int remote_fd = r->remote_.get();
  const int local_fd = r->local_.get();
  auto in = StartGuardedThread(
      "relay of the " + r->what_ + " (in)",
      [r, remote_fd, local_fd] { r->Carry(remote_fd, local_fd, true); }, on_failure);
  if (!in.ok()) {
    r->Stop();
    return in.status();
  }
  r->in_ = std::move(*in);
  auto out = StartGuardedThread(
      "relay of the " + r->what_ + " (out)",
      [r, remote_fd, local_fd] { r->Carry(local_fd, remote_fd, false); }, on_failure);
  if (!out.ok()) {
    r->Stop();  // the destructor joins the direction that started
    return out.status();
  }
  r->out_ = std::move(*out);
  return relay;
}

SocketRelay::SocketRelay(UniqueFd remote, UniqueFd local, std::string what,
                         std::shared_ptr<NbdTurn> turn)
    : remote_(std::move(remote)),
      local_(std::move(local)),
      what_(std::move(what)),
      turn_(std::move(turn)) {}

SocketRelay::~SocketRelay() {
  Stop();
  if (in_.joinable()) in_.join();
  if (out_.joinable()) out_.join();
}

Status SocketRelay::Wait() {
  if (in_.joinable()) in_.join();
  if (out_.joinable()) out_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return first_failure_;
}

void SocketRelay::Stop() {
  stopping_.store(true);
  ::shutdown(remote_.get(), SHUT_RDWR);
  ::shutdown(local_.get(), SHUT_RDWR);
}

void SocketRelay::Fail(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_failure_.ok()) first_failure_ = why.WithContext("relay of the " + what_);
  }
  Stop();
}

void SocketRelay::Carry(int from, int to, bool inward) {
  // Each guest write waits for this hop (thread_priority.h).
  const ThreadPriorityBoost boost(kRelayNice);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Fail(Errno("pipe"));
  UniqueFd pipe_out(pipe_fds[0]);
  UniqueFd pipe_in(pipe_fds[1]);
  (void)::fcntl(pipe_in.get(), F_SETPIPE_SZ, kPipeBytes);  // the default 64 KiB still works
  const std::string from_name = inward ? "the other host's connection" : "QEMU's NBD server";
  const std::string to_name = inward ? "QEMU's NBD server" : "the other host's connection";
  while (!stopping_.load()) {
    const ssize_t got =
        ::splice(from, nullptr, pipe_in.get(), nullptr, kSpliceBytes, SPLICE_F_MOVE);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (!stopping_.load()) Fail(Errno("reading " + from_name));
      return;
    }
    if (got == 0) {  // that end closed: tell the other, keep the other direction going
      ::shutdown(to, SHUT_WR);
      return;
    }
    if (!inward && turn_) turn_->AnswerOut();
    for (ssize_t left = got; left > 0;) {
      const ssize_t put =
          ::splice(pipe_out.get(), nullptr, to, nullptr, static_cast<size_t>(left), SPLICE_F_MOVE);
      if (put < 0 && errno == EINTR) continue;
      if (put <= 0) {
        if (!stopping_.load()) {
          Fail(put < 0 ? Errno("writing " + to_name)
                       : Status::Unavailable("a splice moved nothing"));
        }
        return;
      }
      left -= put;
    }
    if (inward) {
      if (turn_) turn_->RequestIn();
      FaultPoint("migrate.disk.relaying");
    }
  }
}

}  // namespace ferry::migrate

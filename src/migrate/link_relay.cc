#include "migrate/link_relay.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/fault_point.h"
#include "core/guarded_thread.h"
#include "core/thread_priority.h"

namespace ferry::migrate {
namespace {

constexpr size_t kChunkBytes = 256 << 10;
constexpr std::chrono::milliseconds kPollEvery{200};
// Above the memory stream's pump (kDataPathNice): at the switchover the guest is stopped until
// two NBD flushes have made their round trips, while the pump still carries megabytes of the
// stream at the same time; at the pump's priority a request waited up to 5 ms for this thread
// (ferryd's timestamps beside QEMU's trace events, issue 13).
constexpr int kRelayNice = ThreadPriorityBoost::kDataPathNice - 5;

}  // namespace

Result<std::unique_ptr<LinkRelay>> LinkRelay::Start(StreamFd socket, std::shared_ptr<PeerLink> link,
                                                    std::string what,
                                                    std::shared_ptr<NbdTurn> turn) {
  std::unique_ptr<LinkRelay> relay(
      new LinkRelay(std::move(socket), std::move(link), what, std::move(turn)));
  LinkRelay* r = relay.get();
  // A direction that throws fails the relay (both directions end), never ferryd.
  auto on_failure = [r](const Status& why) { r->Fail(why); };
  auto out = StartGuardedThread(
      "relay of the " + what + " (out)", [r] { r->SocketToLink(); }, on_failure);
  if (!out.ok()) {
    r->Stop();
    return out.status();
  }
  r->out_ = std::move(*out);
  auto in = StartGuardedThread(
      "relay of the " + what + " (in)", [r] { r->LinkToSocket(); }, on_failure);
  if (!in.ok()) {
    r->Stop();  // the destructor joins the direction that started
    return in.status();
  }
  r->in_ = std::move(*in);
  return relay;
}

LinkRelay::LinkRelay(StreamFd socket, std::shared_ptr<PeerLink> link, std::string what,
                     std::shared_ptr<NbdTurn> turn)
    : socket_(std::move(socket)),
      link_(std::move(link)),
      what_(std::move(what)),
      turn_(std::move(turn)) {}

LinkRelay::~LinkRelay() {
  Stop();
  if (out_.joinable()) out_.join();
  if (in_.joinable()) in_.join();
}

Status LinkRelay::Wait() {
  if (out_.joinable()) out_.join();
  if (in_.joinable()) in_.join();
  ended_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  return first_failure_;
}

void LinkRelay::Stop() {
  stopping_.store(true);
  link_->Close();
  ::shutdown(socket_.get(), SHUT_RDWR);
}

void LinkRelay::Fail(const Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_failure_.ok()) first_failure_ = why.WithContext("relay of the " + what_);
  }
  Stop();
}

void LinkRelay::SocketToLink() {
  // Each guest write waits for this hop (thread_priority.h).
  const ThreadPriorityBoost boost(kRelayNice);
  std::vector<char> buffer(kChunkBytes);
  while (!stopping_.load()) {
    pollfd p{socket_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(kPollEvery.count()));
    if (n < 0 && errno != EINTR) return Fail(Status::Internal(std::strerror(errno)));
    if (n <= 0) continue;
    ssize_t got = ::read(socket_.get(), buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Fail(
          Status::Unavailable(std::string("reading the local socket: ") + std::strerror(errno)));
    }
    if (got == 0) {  // the local end closed: tell the other side, keep receiving
      Status ended = link_->SendStreamEnd();
      if (!ended.ok() && !stopping_.load()) Fail(ended);
      return;
    }
    if (turn_) turn_->AnswerOut();
    Status sent = link_->SendData(buffer.data(), static_cast<size_t>(got));
    if (!sent.ok()) return stopping_.load() ? void() : Fail(sent);
    FaultPoint("migrate.disk.relaying");
  }
}

void LinkRelay::LinkToSocket() {
  const ThreadPriorityBoost boost(kRelayNice);
  while (!stopping_.load()) {
    auto frame = link_->Receive(kPollEvery);
    if (!frame.ok()) {
      if (frame.status().code() == Status::Code::kDeadlineExceeded) continue;
      if (!stopping_.load()) Fail(frame.status());
      return;
    }
    if (frame->type == FrameType::kStreamEnd) {
      ::shutdown(socket_.get(), SHUT_WR);
      return;
    }
    if (frame->type != FrameType::kData) {
      return Fail(Status::Corruption(link_->description() + ": a " + FrameTypeName(frame->type) +
                                     " frame inside a relayed stream"));
    }
    const char* data = frame->payload.data();
    size_t left = frame->payload.size();
    while (left > 0) {
      ssize_t wrote = ::send(socket_.get(), data, left, MSG_NOSIGNAL);
      if (wrote < 0) {
        if (errno == EINTR) continue;
        if (!stopping_.load()) {
          Fail(Status::Unavailable(std::string("writing the local socket: ") +
                                   std::strerror(errno)));
        }
        return;
      }
      data += wrote;
      left -= static_cast<size_t>(wrote);
    }
    if (turn_) turn_->RequestIn();
  }
}

}  // namespace ferry::migrate

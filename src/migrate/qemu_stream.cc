#include "migrate/qemu_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "core/fault_point.h"
#include "core/socket_buffer.h"
#include "migrate/migration_messages.h"

namespace ferry::migrate {
namespace {

constexpr size_t kChunk = 1 << 20;
// With a turn, the stream goes into QEMU in pieces this big, so that a request of the disk's
// waits for at most one of them.
constexpr size_t kTurnChunk = 256 << 10;

Status Errno(const std::string& what) {
  return Status::Internal(what + ": " + std::strerror(errno));
}

}  // namespace

StreamFd::~StreamFd() {
  if (fd_ >= 0) ::close(fd_);
}

StreamFd& StreamFd::operator=(StreamFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Result<StreamPair> NewStreamPair(int buffer_bytes) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Errno("migration stream socket pair");
  }
  StreamPair pair{StreamFd(fds[0]), StreamFd(fds[1])};
  SetStreamBuffer(pair.qemu, buffer_bytes);
  SetStreamBuffer(pair.ferryd, buffer_bytes);
  return pair;
}

void SetStreamBuffer(const StreamFd& fd, int buffer_bytes) {
  // Beyond the sysctl limit only with CAP_NET_ADMIN, which ferryd has for taps.
  (void)SetSendBuffer(fd.get(), buffer_bytes);
}

Status PumpToLink(const StreamFd& fd, PeerLink& link, const std::atomic<bool>& cancel,
                  const std::function<void(uint64_t)>& on_bytes) {
  std::vector<char> buffer(kChunk);
  uint64_t total = 0;
  for (;;) {
    if (cancel.load()) return Status::Cancelled("the migration was cancelled");
    pollfd p{fd.get(), POLLIN, 0};
    int n = ::poll(&p, 1, 200);
    if (n < 0 && errno != EINTR) return Errno("reading QEMU's migration stream");
    if (n <= 0) continue;
    ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Errno("reading QEMU's migration stream");
    }
    if (got == 0) return Status::Ok();
    FERRY_RETURN_IF_ERROR(link.SendData(buffer.data(), static_cast<size_t>(got)));
    FaultPoint("migrate.source.pumping");
    total += static_cast<uint64_t>(got);
    if (on_bytes) on_bytes(total);
  }
}

Status PumpFromLink(PeerLink& link, const StreamFd& fd, std::chrono::milliseconds idle_timeout,
                    NbdTurn* turn) {
  for (;;) {
    auto frame = link.Receive(idle_timeout);
    if (!frame.ok()) return frame.status().WithContext("receiving the migration stream");
    if (frame->type == FrameType::kStreamEnd) return Status::Ok();
    if (frame->type == FrameType::kControl) {
      auto message = ParsePeerMessage(frame->payload);
      std::string why = !message.ok() ? message.status().message()
                        : std::holds_alternative<AbortRequest>(*message)
                            ? std::get<AbortRequest>(*message).error
                        : std::holds_alternative<FailedReply>(*message)
                            ? std::get<FailedReply>(*message).error
                            : std::string("it sent \"") + MessageType(*message) +
                                  "\" in the middle of the stream";
      return Status::Unavailable("the source gave up the migration: " + why);
    }
    const char* data = frame->payload.data();
    size_t left = frame->payload.size();
    while (left > 0) {
      if (turn) turn->AwaitTurn(kNbdTurnMaxWait);
      ssize_t wrote = ::write(fd.get(), data, turn ? std::min(left, kTurnChunk) : left);
      if (wrote < 0) {
        if (errno == EINTR) continue;
        return Errno("writing the migration stream into QEMU");
      }
      data += wrote;
      left -= static_cast<size_t>(wrote);
    }
  }
}

}  // namespace ferry::migrate

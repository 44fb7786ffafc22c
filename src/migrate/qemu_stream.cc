#include "migrate/qemu_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "core/fault_point.h"

namespace ferry::migrate {
namespace {

constexpr size_t kChunk = 1 << 20;

Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("migration socket path " + path + " is too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

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

Result<StreamFd> ListenUnix(const std::string& path) {
  FERRY_ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  ::unlink(path.c_str());
  StreamFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Errno("migration socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Errno("binding migration socket " + path);
  }
  ::chmod(path.c_str(), 0600);
  if (::listen(fd.get(), 1) != 0) return Errno("listening on migration socket " + path);
  return fd;
}

Result<StreamFd> AcceptUnix(const StreamFd& listener, std::chrono::milliseconds timeout) {
  pollfd p{listener.get(), POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n == 0) {
    return Status::DeadlineExceeded("QEMU did not connect its migration stream within " +
                                    std::to_string(timeout.count()) + " ms");
  }
  if (n < 0) return Errno("waiting for QEMU's migration stream");
  StreamFd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (fd.get() < 0) return Errno("accepting QEMU's migration stream");
  return fd;
}

Result<StreamFd> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout) {
  FERRY_ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    StreamFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return Errno("migration socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (std::chrono::steady_clock::now() >= until) {
      return Status::DeadlineExceeded("QEMU's incoming migration socket " + path +
                                      " did not accept within " + std::to_string(timeout.count()) +
                                      " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
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

Status PumpFromLink(PeerLink& link, const StreamFd& fd, std::chrono::milliseconds idle_timeout) {
  for (;;) {
    auto frame = link.Receive(idle_timeout);
    if (!frame.ok()) return frame.status().WithContext("receiving the migration stream");
    if (frame->type == FrameType::kStreamEnd) return Status::Ok();
    if (frame->type == FrameType::kControl) {
      auto message = nlohmann::json::parse(frame->payload, nullptr, false);
      std::string why = message.is_object() ? message.value("error", "no reason given") : "?";
      return Status::Unavailable("the source gave up the migration: " + why);
    }
    const char* data = frame->payload.data();
    size_t left = frame->payload.size();
    while (left > 0) {
      ssize_t wrote = ::write(fd.get(), data, left);
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

// QEMU's migration stream on the host side: QEMU writes (source) or reads (destination) it on a
// UNIX socket that ferryd holds the other end of, and ferryd carries the bytes over a PeerLink.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "migrate/peer_link.h"

namespace ferry::migrate {

// An owned file descriptor.
class StreamFd {
 public:
  explicit StreamFd(int fd = -1) : fd_(fd) {}
  ~StreamFd();
  StreamFd(StreamFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  StreamFd& operator=(StreamFd&& o) noexcept;
  StreamFd(const StreamFd&) = delete;
  StreamFd& operator=(const StreamFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Listens on a new UNIX socket at `path` (mode 0600), for QEMU's `migrate unix:PATH`.
Result<StreamFd> ListenUnix(const std::string& path);
// Accepts one connection within `timeout`.
Result<StreamFd> AcceptUnix(const StreamFd& listener, std::chrono::milliseconds timeout);
// Connects to QEMU's `migrate-incoming unix:PATH` listener, retrying until it exists.
Result<StreamFd> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout);

// Sends everything QEMU writes on `fd` as data frames until QEMU closes it. `on_bytes` sees the
// running total. Stops with Cancelled when `cancel` becomes true.
Status PumpToLink(const StreamFd& fd, PeerLink& link, const std::atomic<bool>& cancel,
                  const std::function<void(uint64_t)>& on_bytes);
// Writes the link's data frames into `fd` until the stream-end frame. A control frame here is
// the other side giving up: its "error" becomes the Status.
Status PumpFromLink(PeerLink& link, const StreamFd& fd, std::chrono::milliseconds idle_timeout);

}  // namespace ferry::migrate

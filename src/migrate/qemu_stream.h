// QEMU's migration stream on the host side: QEMU writes (source) or reads (destination) it on
// one end of a socket pair whose other end ferryd holds, and ferryd carries the bytes over a
// PeerLink.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "migrate/nbd_turn.h"
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

// The two ends of a new stream socket pair: `qemu` goes to QEMU (QMP getfd, then an "fd:"
// migration URI), `ferryd` stays here. The QEMU end's send buffer and ours get
// `buffer_bytes` (as root beyond the sysctl limits), so QEMU's last burst after it stopped the
// guest lands in the kernel at once instead of waiting for ferryd to read it: that wait would be
// downtime.
struct StreamPair {
  StreamFd qemu;
  StreamFd ferryd;
};
Result<StreamPair> NewStreamPair(int buffer_bytes);
// Sets `fd`'s send buffer to `buffer_bytes`, as NewStreamPair does (best effort).
void SetStreamBuffer(const StreamFd& fd, int buffer_bytes);
// What both ends use: the name QEMU knows the descriptor by, and the buffer size.
inline constexpr const char* kStreamFdName = "ferry-migration";
inline constexpr int kStreamBufferBytes = 16 << 20;
// The memory stream's buffer when a disk moves too. The destination's QEMU loads the stream in
// its main loop and serves the disk's NBD export only when it has read all it was given; at the
// switchover the source's QEMU, the guest stopped, waits for that export to answer a flush
// (QEMU's vm_stop flushes every node), so all the stream ferryd holds ahead of the destination
// becomes downtime: 7-72 ms of it was measured with 16 MiB per end (issue 13). With 4 MiB the
// destination keeps up and the stream keeps its pace; 1 MiB, tried first, halved the memory
// stream's rate under a write load (256 MiB guest with a 1 GiB disk under redis, ferry / bare
// QEMU: total 1.34 with 1 MiB, 0.96 with 4 MiB; downtime 0.63 and 1.02). At the switchover,
// once that flush is answered, QEMU's end gets kStreamBufferBytes again for its last pass.
inline constexpr int kStreamBufferWithDiskBytes = 4 << 20;
// The destination's end when a disk moves too: what ferryd hands QEMU ahead of an NBD request is
// what that request waits behind in the destination's main loop (nbd_turn.h), so that end holds
// little; the source's end keeps kStreamBufferWithDiskBytes for the stream's pace. Measured on
// QEMU 10.0 (256 MiB guest, 1 GiB disk, redis load, 4 MiB vs 512 KiB here, alternated A/B, 4
// runs each): downtime 17 -> 15 ms, total time 2500 -> 2447 ms, memory phase 700 -> 734 ms.
inline constexpr int kDestinationStreamBufferWithDiskBytes = 512 << 10;

// Sends everything QEMU writes on `fd` as data frames until QEMU closes it. `on_bytes` sees the
// running total. Stops with Cancelled when `cancel` becomes true.
Status PumpToLink(const StreamFd& fd, PeerLink& link, const std::atomic<bool>& cancel,
                  const std::function<void(uint64_t)>& on_bytes);
// Writes the link's data frames into `fd` until the stream-end frame. A control frame here is
// the other side giving up: its "error" becomes the Status. With a `turn`, each write waits for
// it (a disk's NBD request inside QEMU goes first, nbd_turn.h).
Status PumpFromLink(PeerLink& link, const StreamFd& fd, std::chrono::milliseconds idle_timeout,
                    NbdTurn* turn = nullptr);

}  // namespace ferry::migrate

// HostChannel: the guest end of the virtio-serial port "org.ferry.guest".
//
// Facts about the port this class is built on (drivers/char/virtio_console.c):
// - It exists only once virtio_console has probed; the name is in
//   /sys/class/virtio-ports/vportNpM/name, the node is /dev/vportNpM (created here with mknod
//   if nothing else did).
// - While the host side (the QEMU chardev) has no client, poll() reports POLLHUP|POLLIN and
//   read() returns 0, so polling a disconnected port would spin. Instead the port is left out
//   of the poll set until SIGIO (O_ASYNC) says the host connection changed.
// - write() blocks, or fails with EAGAIN here, while the host is not connected, so output waits
//   in an outbox.
// - The connection state it reports is racy: when a host connects, its first bytes can be
//   readable (with POLLHUP still set, read() then returning 0) before the driver has processed
//   the connect message. So "host gone" only pauses polling; nothing queued or partly read is
//   dropped, and a host that wants a clean start sends "\n" first (see protocol.h).
//
// Thread-safety: none; it belongs to the agent's single event loop.
#pragma once

#include <poll.h>

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "guest/line_reader.h"

namespace ferry::guest {

class HostChannel {
 public:
  // port_path: a device to open as the port (for running outside a guest); empty means find the
  // port named kPortName under /sys/class/virtio-ports.
  explicit HostChannel(std::string port_path);
  ~HostChannel();
  HostChannel(const HostChannel&) = delete;
  HostChannel& operator=(const HostChannel&) = delete;

  // Opens the port if it is not open yet. Returns why not when it is still missing or fails.
  // REQUIRES: SIGIO is blocked and read through a signalfd (or ignored), since the port is put
  // in O_ASYNC mode.
  std::optional<std::string> TryOpen();
  bool is_open() const { return fd_ >= 0; }
  bool host_connected() const { return host_connected_; }

  // What to poll for on the port; fd is -1 when there is nothing to wait for (closed, or the
  // host is known to be away).
  pollfd PollRequest() const;

  // Handles what poll() reported for the port; returns the request lines that arrived.
  std::vector<LineReader::Line> OnPollResult(short revents);

  // The host connection may have changed (SIGIO, or a periodic check): poll the port again.
  void RecheckHost() { host_connected_ = true; }

  // Queues one line (without "\n") for the host and writes what it can without blocking.
  void Send(std::string line);

  // Writes out everything queued, waiting up to timeout_ms. Returns true when all was written.
  bool Flush(int timeout_ms);

 private:
  std::optional<std::string> FindPortDevice();
  void WriteSome();
  void HostGone();
  void Close();
  std::size_t QueuedBytes() const;

  std::string port_path_;
  int fd_ = -1;
  bool host_connected_ = true;  // assumed until the port says otherwise
  LineReader reader_;
  std::deque<std::string> outbox_;  // lines ending in "\n"
  std::size_t front_written_ = 0;   // bytes of outbox_.front() already written
};

}  // namespace ferry::guest

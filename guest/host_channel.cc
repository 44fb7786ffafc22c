#include "guest/host_channel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "guest/guest_system.h"
#include "guest/protocol.h"

namespace ferry::guest {
namespace {

constexpr const char* kVirtioPortsDir = "/sys/class/virtio-ports";
constexpr std::size_t kReadChunk = 16 * 1024;
// Read at most this much per poll round, so the replies to one batch are queued (and the
// outbox limit below applies) before more is read.
constexpr std::size_t kMaxReadPerRound = 256 * 1024;
// Above this much unsent output the port is not read, so a host that sends but never reads
// cannot make the guest buffer without bound.
constexpr std::size_t kMaxQueuedBytes = 1024 * 1024;

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text;
  std::getline(in, text);
  return TrimWhitespace(text);
}

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

HostChannel::HostChannel(std::string port_path)
    : port_path_(std::move(port_path)), reader_(kMaxLineBytes) {}

HostChannel::~HostChannel() { Close(); }

std::optional<std::string> HostChannel::FindPortDevice() {
  auto system = NewLinuxGuestSystem();
  for (const std::string& entry : system->ListDir(kVirtioPortsDir)) {
    std::string dir = std::string(kVirtioPortsDir) + "/" + entry;
    auto name = ReadSmallFile(dir + "/name");
    if (!name || *name != kPortName) continue;
    std::string dev = "/dev/" + entry;
    struct stat st {};
    if (stat(dev.c_str(), &st) == 0) return dev;
    // No devtmpfs or mdev made the node: make it from the numbers sysfs gives.
    auto numbers = ReadSmallFile(dir + "/dev");
    unsigned maj = 0, min = 0;
    if (!numbers || std::sscanf(numbers->c_str(), "%u:%u", &maj, &min) != 2) continue;
    if (mknod(dev.c_str(), S_IFCHR | 0600, makedev(maj, min)) != 0 && errno != EEXIST) continue;
    return dev;
  }
  return std::nullopt;
}

std::optional<std::string> HostChannel::TryOpen() {
  if (fd_ >= 0) return std::nullopt;
  std::string path = port_path_;
  if (path.empty()) {
    auto found = FindPortDevice();
    if (!found) {
      return "no virtio-serial port named " + std::string(kPortName) + " in " + kVirtioPortsDir +
             " yet (is virtio_console loaded and the virtserialport device given to QEMU?)";
    }
    path = *found;
  }
  int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return "cannot open " + path + ": " + ErrnoText(errno);
  // SIGIO on host connect/disconnect and on data, so a disconnected port need not be polled.
  if (fcntl(fd, F_SETOWN, getpid()) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) != 0) {
    int err = errno;
    close(fd);
    return "cannot enable SIGIO on " + path + ": " + ErrnoText(err);
  }
  fd_ = fd;
  host_connected_ = true;
  reader_.Reset();
  return std::nullopt;
}

pollfd HostChannel::PollRequest() const {
  pollfd p{-1, 0, 0};
  if (fd_ < 0 || !host_connected_) return p;
  p.fd = fd_;
  if (QueuedBytes() < kMaxQueuedBytes) p.events |= POLLIN;
  if (!outbox_.empty()) p.events |= POLLOUT;
  return p;
}

std::vector<LineReader::Line> HostChannel::OnPollResult(short revents) {
  std::vector<LineReader::Line> lines;
  if (fd_ < 0) return lines;
  if (revents & POLLNVAL) {
    Close();
    return lines;
  }
  bool drained = false;  // read until the port had nothing more
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    char buf[kReadChunk];
    for (std::size_t total = 0; total < kMaxReadPerRound;) {
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n > 0) {
        total += static_cast<std::size_t>(n);
        for (auto& line : reader_.Feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
          lines.push_back(std::move(line));
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      drained = true;
      if (n == 0) {
        HostGone();  // no data and no host
      } else if (errno != EAGAIN) {
        Close();  // reopened by the event loop; the port may have been unplugged
      }
      break;
    }
  }
  // POLLHUP alone (no read above returned 0) still means no host; but not while data is left.
  if (fd_ >= 0 && (revents & POLLHUP) && drained) HostGone();
  if (fd_ >= 0 && host_connected_ && (revents & POLLOUT)) WriteSome();
  return lines;
}

void HostChannel::Send(std::string line) {
  line.push_back('\n');
  outbox_.push_back(std::move(line));
  if (fd_ >= 0 && host_connected_) WriteSome();
}

void HostChannel::WriteSome() {
  while (!outbox_.empty()) {
    const std::string& data = outbox_.front();
    ssize_t n = write(fd_, data.data() + front_written_, data.size() - front_written_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) Close();
      return;
    }
    front_written_ += static_cast<std::size_t>(n);
    if (front_written_ == data.size()) {
      outbox_.pop_front();
      front_written_ = 0;
    }
  }
}

bool HostChannel::Flush(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (fd_ < 0) return outbox_.empty();
    WriteSome();
    if (outbox_.empty()) return true;
    if (fd_ < 0) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno != EINTR) return false;
    if (n > 0 && !(p.revents & POLLOUT)) {
      // POLLHUP: the host is away, or its connect is not processed yet (see the header). poll()
      // would return at once again, so wait a little before retrying, up to the deadline.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void HostChannel::HostGone() {
  // Only stop polling. Nothing queued or half-read is dropped: "host gone" is also what the port
  // says for a moment when a host connects (its first bytes can be readable before the driver
  // has processed the connect message), and dropping then would lose that host's request.
  host_connected_ = false;
}

void HostChannel::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  host_connected_ = false;
  // A reopened port is a new stream: what was half-read or half-written belongs to the old one.
  reader_.Reset();
  if (front_written_ > 0) {
    outbox_.pop_front();
    front_written_ = 0;
  }
}

std::size_t HostChannel::QueuedBytes() const {
  std::size_t total = 0;
  for (const std::string& line : outbox_) total += line.size();
  return total;
}

}  // namespace ferry::guest

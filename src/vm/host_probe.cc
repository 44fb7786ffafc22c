#include "vm/host_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/files.h"
#include "vm/tap_device.h"

namespace ferry::vm {

Result<uint64_t> MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return Status::Internal("/proc/meminfo has no MemAvailable line");
}

bool TcpPortFree(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free;
}

uint16_t EphemeralPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

HostCapacity ProbeCapacity(const std::string& ram_dir) {
  HostCapacity cap;
  auto mem = MemAvailableBytes();
  cap.mem_available_bytes = mem.ok() ? *mem : 0;
  // What running VMs' sparse RAM files may still grow into is theirs, not free.
  auto free = HeadroomIn(ram_dir);
  cap.ram_dir_free_bytes = free.ok() ? *free : 0;
  cap.tcp_port_free = TcpPortFree;
  cap.bridge_usable = TapDevice::CheckBridge;
  return cap;
}

}  // namespace ferry::vm

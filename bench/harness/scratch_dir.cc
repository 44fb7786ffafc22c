#include "bench/harness/scratch_dir.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/files.h"
#include "core/process.h"

namespace ferry::bench {

Result<ScratchDir> ScratchDir::Create(const std::string& parent, const std::string& prefix) {
  std::string templ = parent + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return Status::Internal("cannot create a temporary directory in " + parent + ": " +
                            std::strerror(errno));
  }
  return ScratchDir(std::string(buf.data()));
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

ScratchDir& ScratchDir::operator=(ScratchDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) RemoveAll(path_);
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

ScratchDir::~ScratchDir() {
  if (!path_.empty()) RemoveAll(path_);
}

Result<uint16_t> FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    return Status::ResourceExhausted(std::string("no free port on 127.0.0.1: ") +
                                     std::strerror(err));
  }
  ::close(fd);
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

int KillProcessesUsing(const std::string& path) {
  if (path.empty()) return 0;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  std::vector<std::pair<pid_t, uint64_t>> victims;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == ::getpid()) continue;
    auto cmdline = ReadFile("/proc/" + std::string(e->d_name) + "/cmdline");
    if (!cmdline.ok()) continue;
    if (cmdline->find(path) == std::string::npos &&
        OpenFileUnder(static_cast<pid_t>(pid), path).empty()) {
      continue;
    }
    auto start = ProcessStartTime(static_cast<pid_t>(pid));
    if (start.ok()) victims.emplace_back(static_cast<pid_t>(pid), *start);
  }
  ::closedir(proc);
  int killed = 0;
  for (const auto& [pid, start] : victims) {
    // Adopt checks the start time, so a pid reused since the scan is left alone.
    auto p = Process::Adopt(pid, start);
    if (!p.ok()) continue;
    p->Signal(SIGKILL);
    p->WaitExit(std::chrono::seconds(5));
    ++killed;
  }
  return killed;
}

}  // namespace ferry::bench

#include "guest/guest_system.h"

#include <dirent.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ferry::guest {
namespace {

class LinuxGuestSystem : public GuestSystem {
 public:
  std::optional<std::string> ReadFile(const std::string& path) override {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return out.str();
  }

  std::vector<std::string> ListDir(const std::string& path) override {
    std::vector<std::string> names;
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) return names;
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string Hostname() override {
    utsname u{};
    if (uname(&u) != 0) return "";
    return u.nodename;
  }

  std::string KernelRelease() override {
    utsname u{};
    if (uname(&u) != 0) return "";
    return u.release;
  }

  bool IsInit() override { return getpid() == 1; }
};

}  // namespace

std::unique_ptr<GuestSystem> NewLinuxGuestSystem() { return std::make_unique<LinuxGuestSystem>(); }

std::optional<long long> ParseUptimeMs(const std::string& proc_uptime) {
  // strtod rather than streams: no locale surprises, and it tells us where it stopped.
  const char* begin = proc_uptime.c_str();
  char* end = nullptr;
  errno = 0;
  double seconds = std::strtod(begin, &end);
  if (end == begin || errno != 0 || !std::isfinite(seconds) || seconds < 0) return std::nullopt;
  return static_cast<long long>(seconds * 1000.0);
}

std::string TrimWhitespace(const std::string& s) {
  const char* kSpace = " \t\r\n";
  std::size_t first = s.find_first_not_of(kSpace);
  if (first == std::string::npos) return "";
  std::size_t last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

}  // namespace ferry::guest

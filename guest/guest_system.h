// GuestSystem: the parts of the guest OS that the ops read, behind an interface so the ops can
// be tested on any machine with canned files (as LevelDB's Env does for the filesystem).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::guest {

class GuestSystem {
 public:
  virtual ~GuestSystem() = default;

  // Whole file contents, or nullopt if it cannot be read.
  virtual std::optional<std::string> ReadFile(const std::string& path) = 0;
  // Entry names in a directory (no "." or ".."), sorted; empty if it cannot be read.
  virtual std::vector<std::string> ListDir(const std::string& path) = 0;
  virtual std::string Hostname() = 0;
  virtual std::string KernelRelease() = 0;
  // True when this process is the guest's init (PID 1), the only case where it may power off.
  virtual bool IsInit() = 0;
};

// The real system, through the Linux syscalls and /proc and /sys.
std::unique_ptr<GuestSystem> NewLinuxGuestSystem();

// Milliseconds since kernel boot, from the first field of /proc/uptime ("12.34 5.67").
std::optional<long long> ParseUptimeMs(const std::string& proc_uptime);

// Removes leading and trailing whitespace, as file contents like boot_id end with "\n".
std::string TrimWhitespace(const std::string& s);

}  // namespace ferry::guest

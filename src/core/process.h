// Processes ferryd starts and watches. QEMU must outlive a ferryd that crashes or restarts, so a
// Process is started in its own session and can be re-adopted later from (pid, start time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry {

// How a watched process ended. `known` is false for a re-adopted process: it is not our child, so
// the kernel gives its exit status to someone else.
struct ProcessExit {
  bool known = false;
  bool signaled = false;
  int code = 0;                  // exit code, or signal number when `signaled`
  std::string Describe() const;  // "exited with code 1", "was killed by signal 9 (Killed)", ...
};

// Who a spawned process runs as. The child switches to it between fork and exec: the program
// never runs as root, so it needs no privilege-dropping of its own, and it starts with no
// capabilities and no_new_privs.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups; none when empty
};

struct SpawnOptions {
  // "NAME=VALUE" each, set on top of this process's environment.
  std::vector<std::string> extra_env;
  // Descriptors the process inherits, in order: the i-th is its descriptor InheritedFd(i).
  std::vector<int> inherit;
  // Unset: ours. Set: the process runs as this user, from the directory "/".
  std::optional<Credentials> run_as;
};

// The number the i-th descriptor of SpawnOptions::inherit has in the spawned process.
constexpr int InheritedFd(size_t i) { return 3 + static_cast<int>(i); }

// Owns a pidfd for one process. Not thread-safe; one owner.
class Process {
 public:
  // Starts argv[0] (searched in PATH) with stdin from /dev/null and stdout+stderr appended to
  // `log_path`, in a new session, with no inherited descriptors beyond 0-2, in this process's
  // environment with `extra_env` ("NAME=VALUE" each) set on top.
  static Result<Process> Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                               const std::vector<std::string>& extra_env = {});
  // The same, with descriptors to inherit and the user to run as.
  static Result<Process> Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                               const SpawnOptions& options);
  // Re-adopts a process started earlier. Fails with NotFound if it is gone or if the pid was
  // reused (its start time differs).
  static Result<Process> Adopt(pid_t pid, uint64_t start_time);

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  uint64_t start_time() const { return start_time_; }
  bool is_child() const { return is_child_; }
  // Readable (POLLIN) once the process has exited.
  int pidfd() const { return pidfd_; }

  bool Running() const;
  // Waits up to `timeout` for the process to end; returns its exit if it did, reaping a child.
  std::optional<ProcessExit> WaitExit(std::chrono::milliseconds timeout);
  void Signal(int sig) const;

 private:
  Process(pid_t pid, int pidfd, uint64_t start_time, bool is_child)
      : pid_(pid), pidfd_(pidfd), start_time_(start_time), is_child_(is_child) {}
  pid_t pid_ = -1;
  int pidfd_ = -1;
  uint64_t start_time_ = 0;
  bool is_child_ = false;
  std::optional<ProcessExit> exit_;
};

// A file at `dir` or below it that process `pid` holds open; "" when none (or when its
// descriptors cannot be read). A QEMU gets its files as descriptors, so this, not its command
// line, says which VM directory it belongs to.
std::string OpenFileUnder(pid_t pid, const std::string& dir);

// Field 22 of /proc/PID/stat (clock ticks since boot): with the pid, identifies a process.
Result<uint64_t> ProcessStartTime(pid_t pid);

}  // namespace ferry

// ChildReaper: as PID 1, ferry-guest inherits every orphan in the guest (redis daemonizes, so it
// is one) and must reap them, or they stay zombies for the life of the VM.
//
// Reaping with waitpid(-1) would also take the exit status of a child that ferry-guest started
// itself and wants to wait for. Such code calls Watch(pid) right after fork(), before the event
// loop next reaps, and then collects the status with TakeStatus(pid) instead of calling waitpid.
//
// Thread-safety: none; it belongs to the agent's single event loop.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>

namespace ferry::guest {

class ChildReaper {
 public:
  void Watch(pid_t pid) { watched_[pid] = std::nullopt; }

  // Reaps every child that has exited, without blocking. Returns false when the process has no
  // children left at all.
  bool ReapExited();

  // The wait status of a watched child once it has been reaped; it is then forgotten.
  std::optional<int> TakeStatus(pid_t pid);

 private:
  std::map<pid_t, std::optional<int>> watched_;
};

}  // namespace ferry::guest

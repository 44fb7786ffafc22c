#include "guest/child_reaper.h"

#include <sys/wait.h>

#include <cerrno>

namespace ferry::guest {

bool ChildReaper::ReapExited() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      auto it = watched_.find(pid);
      if (it != watched_.end()) it->second = status;
      continue;
    }
    if (pid < 0 && errno == EINTR) continue;
    return !(pid < 0 && errno == ECHILD);
  }
}

std::optional<int> ChildReaper::TakeStatus(pid_t pid) {
  auto it = watched_.find(pid);
  if (it == watched_.end() || !it->second) return std::nullopt;
  int status = *it->second;
  watched_.erase(it);
  return status;
}

}  // namespace ferry::guest

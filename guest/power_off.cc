#include "guest/power_off.h"

#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "guest/console.h"

namespace ferry::guest {
namespace {

// Every process in the guest is a descendant of PID 1, and orphans are re-parented to it, so
// "no children" means no other processes are left.
bool WaitForNoChildren(ChildReaper& reaper, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (!reaper.ReapExited()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::string PowerOffGuest(ChildReaper& reaper, std::chrono::milliseconds grace) {
  if (getpid() != 1) return "not PID 1; refusing to signal every process";
  ConsoleLine("stopping services");
  kill(-1, SIGTERM);
  if (!WaitForNoChildren(reaper, grace)) {
    ConsoleLine("services did not stop within " + std::to_string(grace.count()) +
                " ms; killing them");
    kill(-1, SIGKILL);
    WaitForNoChildren(reaper, std::chrono::milliseconds(500));
  }
  sync();
  ConsoleLine("powering off");
  reboot(RB_POWER_OFF);
  return std::string("reboot(RB_POWER_OFF) failed: ") + std::strerror(errno);
}

}  // namespace ferry::guest

// Power-off of the guest on the host's "shutdown" op: the guest's own orderly end, so services
// get SIGTERM and the page cache reaches any disk before QEMU exits.
#pragma once

#include <chrono>
#include <string>

#include "guest/child_reaper.h"

namespace ferry::guest {

// Sends SIGTERM to every other process, waits up to `grace` for all of them to exit (reaping
// them), SIGKILLs the rest, syncs, and powers off. REQUIRES: running as PID 1, where kill(-1)
// spares only ourselves and the kernel; anywhere else it would hit the whole machine.
// Returns only if the kernel refused to power off, with the reason.
std::string PowerOffGuest(ChildReaper& reaper, std::chrono::milliseconds grace);

}  // namespace ferry::guest

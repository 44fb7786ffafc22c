// Ctrl-C, SIGTERM and SIGHUP end a benchmark early, but only after it has cleaned up: the
// handlers set a flag that every wait in bench/ and testbed/ checks at least every
// kInterruptCheck. Only ferry-bench installs them; for the integration tests nothing is ever
// interrupted.
#pragma once

#include <chrono>
#include <optional>

#include "core/process.h"

namespace ferry::testbed {

// How long a wait may go without looking at the flag.
inline constexpr std::chrono::milliseconds kInterruptCheck(100);

void InstallInterruptHandlers();
bool Interrupted();

// Waits for `process` to exit, for at most `timeout`; empty if it still runs then, or if the
// benchmark was interrupted first. The process is left alone either way.
std::optional<ProcessExit> WaitExitUnlessInterrupted(Process& process,
                                                     std::chrono::milliseconds timeout);

}  // namespace ferry::testbed

// Console: lines for the serial console (ttyS0 via /dev/console), which the host keeps in the
// VM's directory and scans for the ready marker. The console is the one channel that works
// before the virtio port exists and after the host disconnects.
#pragma once

#include <string_view>

namespace ferry::guest {

// Writes `line` and "\n" in one write() so output from other processes does not split it.
// Goes to stderr when not PID 1 (run by hand outside a guest) or without /dev/console.
void ConsoleWrite(std::string_view line);

// Writes "ferry-guest: <message>".
void ConsoleLine(std::string_view message);

}  // namespace ferry::guest

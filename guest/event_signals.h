// The signals the agent's event loop takes from a signalfd: SIGCHLD (a child to reap) and SIGIO
// (the host connection changed). Shared by ferry-guest and the hostile test guest, which speaks
// as ferry-guest does.
#pragma once

namespace ferry::guest {

// Blocks SIGCHLD and SIGIO, which must then stay blocked (a child the agent forks unblocks them
// before exec), ignores SIGPIPE, and returns a non-blocking signalfd for the two; -1 on failure.
int BlockedSignalFd();

}  // namespace ferry::guest

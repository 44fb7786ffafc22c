// The service manager's readiness protocol (sd_notify(3)), spoken directly: one datagram of
// newline-separated KEY=VALUE lines to the AF_UNIX socket named by $NOTIFY_SOCKET ("/path", or
// "@name" for an abstract socket). No libsystemd: this is all of it ferryd needs.
//
//   READY=1      once the API answers and every VM is re-adopted
//   WATCHDOG=1   every WatchdogInterval()/2, from ferryd's main loop, when the unit sets
//                WatchdogSec= (systemd passes $WATCHDOG_USEC and $WATCHDOG_PID)
//   STOPPING=1   when a stop begins
//
// Without $NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/status.h"

namespace ferry {

// Sends `state` (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET. Ok when the variable is
// unset; an error names the socket when it is set and the datagram cannot be sent.
Status NotifyServiceManager(const std::string& state);

// $WATCHDOG_USEC when it is set for this process ($WATCHDOG_PID unset or ours); nullopt otherwise.
std::optional<std::chrono::microseconds> WatchdogInterval();

// True when stderr goes to the journal ($JOURNAL_STREAM names stderr's device and inode): the
// journal stamps each line, so ferryd's log lines carry no time of their own.
bool StderrIsJournal();

}  // namespace ferry

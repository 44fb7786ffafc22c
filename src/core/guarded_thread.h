// Threads that cannot take ferryd down. An exception escaping a std::thread's body calls
// std::terminate, and creating a thread throws std::system_error when the process is out of
// threads or memory; ferryd runs one thread per VM watcher, connection and operation, so either
// would end every VM's agent because of one VM's (or one peer's) trouble. StartGuardedThread
// turns both into values: a creation failure is a Status, and a body that throws is caught,
// logged and reported to `on_failure` (which fails that one VM's operation).
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "core/status.h"

namespace ferry {

// Runs `body`, catching everything it throws. Returns Internal "<what>: <exception text>" for a
// throw, OK otherwise.
Status RunGuarded(const std::string& what, const std::function<void()>& body);

// Starts a thread running RunGuarded(what, body); a failure is logged as an error and passed to
// `on_failure` if given (on the new thread). ResourceExhausted, naming `what`, when the thread
// cannot be created.
Result<std::thread> StartGuardedThread(std::string what, std::function<void()> body,
                                       std::function<void(const Status&)> on_failure = nullptr);

}  // namespace ferry

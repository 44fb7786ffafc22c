// Network namespaces as this machine's `ip netns` names them (/run/netns/NAME): what a test bed
// of namespace "hosts" (netns_segment.h) is made of, and what its users run inside them.
//
// Why a library: the integration tests and the migration benchmark both build hosts out of
// network namespaces on this machine; this is the one copy of that code. Everything here acts on
// namespaces the caller names and owns; nothing creates a link outside them. Needs root.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace ferry::testbed {

// "/run/netns/NAME".
std::string NamespacePath(const std::string& ns);
bool NamespaceExists(const std::string& ns);

// argv that runs `argv` inside namespace `ns` (through `ip netns exec`, which execs in place:
// the pid of the started process is the pid of the program).
std::vector<std::string> InNamespace(const std::string& ns, const std::vector<std::string>& argv);

// Runs `work` on a thread of its own that entered network namespace `ns` (setns moves only the
// calling thread, so the caller's stays where it is) and returns what `work` returned.
Status InNetworkNamespace(const std::string& ns, const std::function<Status()>& work);

// Runs `ip ARGS...` to its exit (killed after 30 s). On failure the Status names the command
// and says what `ip` printed.
Status RunIp(const std::vector<std::string>& args);

// Pids of the processes whose network namespace is `ns` (never this process).
std::vector<pid_t> PidsIn(const std::string& ns);

// SIGKILLs every process inside `ns`, waits until each has exited, then deletes `ns` (which
// deletes its links). A namespace that does not exist is left alone. REQUIRES: only processes
// the caller started run inside `ns`. Never fails; what it cannot do stays undone.
void DeleteNamespace(const std::string& ns);

}  // namespace ferry::testbed

// A ferryd that a test or a benchmark runs on this machine, with directories and an API socket
// of its own, perhaps inside a network namespace: its command line, its start, and whether it
// serves yet. The tests' fixtures (tests/harness/ferryd_fixture.h, netns_hosts.h) and the
// benchmark's BenchFerryd (bench/harness/bench_ferryd.h) start theirs this way and add what each
// needs: gtest failures, the CLI they drive it with, their own teardown.
#pragma once

#include <string>
#include <vector>

#include "core/process.h"
#include "core/status.h"

namespace ferry::testbed {

struct FerrydLaunch {
  std::string binary;  // BUILD/ferryd
  std::string state_dir;
  std::string ram_dir;
  std::string socket;  // a UNIX socket: the CLI reaches it from any network namespace
  std::string netns;   // "" for this process's own
  std::vector<std::string> extra_args;  // after the directories and the socket
  std::string fault_point;              // FERRY_FAULT_POINT (src/core/fault_point.h); "" for none
};

// `ip netns exec NETNS` when in a namespace (it execs in place: the pid started is ferryd's),
// then `BINARY --state-dir S --ram-dir R --socket X EXTRA_ARGS...`.
std::vector<std::string> FerrydCommandLine(const FerrydLaunch& launch);

// Starts `argv` (a FerrydCommandLine, or one a test crafted) with stdin from /dev/null, stdout
// and stderr appended to `log`, and FERRY_FAULT_POINT=`fault_point` in its environment when one
// is given. It stays this process's child: waitpid reaps it.
Result<Process> SpawnFerryd(const std::vector<std::string>& argv, const std::string& log,
                            const std::string& fault_point = "");

// Whether a server accepts connections on UNIX socket `path` (ferryd, once it serves its API).
bool SocketAnswers(const std::string& path);

}  // namespace ferry::testbed
